"""Several GPU workers on one gpu lane: a task goes to the worker that holds its model.

Two catalog names for the real model file (two hard links), two idle GPU workers with GPU_IDs
of their own, tasks for the two models interleaved: each worker loads one model once and the
other's tasks are left to it, instead of both loading the first model or swapping back and forth.
"""

import json
import os
import shutil
import uuid

import pytest

from models_gpu import registry
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import queue, store
from tests.conftest import ROOT, wait_for
from tests.test_workers import _final

pytestmark = pytest.mark.slow
MODEL = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
TASKS = 40
BLOCK = 10  # a×10, b×10, a×10, b×10: an idle worker is tempted by the other model


@pytest.fixture
def two_models(settings):
    """MODELS_DIR with the model under two names (hard links: one file, no copy)."""
    if not MODEL.exists():
        pytest.skip(f"{MODEL} is not installed (make install)")
    root = ROOT / "var" / f"affinity-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    for name in ("model-a", "model-b"):
        os.link(MODEL, root / f"{name}.gguf")
    settings.MODELS_DIR = root
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _submit(model: str) -> str:
    from tasks.serializers import TaskCreateSerializer
    from tasks.services import task_create

    body = {"provider": "local", "model": model, "prompt": "Count: 1, 2,"}
    serializer = TaskCreateSerializer(data={**body, "params": {"max_tokens": 4, "temperature": 0}})
    serializer.is_valid(raise_exception=True)
    created, _ = task_create(data=serializer.validated_data, idempotency_key=None, owner="t")
    return created["task_id"]


def test_two_gpu_workers_and_two_models_interleaved_load_each_model_once(processes, two_models):
    for gpu in ("gpu-a", "gpu-b"):
        processes.worker("gpu", gpu=True, MODELS_DIR=str(two_models), GPU_ID=gpu)
    ids = [_submit("model-a" if (n // BLOCK) % 2 == 0 else "model-b") for n in range(TASKS)]
    tasks = [wait_for(lambda t=t: _final(t), what="every task", timeout=300) for t in ids]
    assert all(t.status == "completed" for t in tasks), [t.error for t in tasks if t.error]
    loads = int(get_redis().hget(keys.stats_total(), "model_loads") or 0)
    by_worker = {}
    for task in tasks:
        by_worker.setdefault(task.worker, set()).add(task.model_key)
    print(f"\n{TASKS} interleaved tasks, 2 models, 2 GPU workers: {loads} loads; {by_worker}")
    assert loads == 2
    assert sorted(len(models) for models in by_worker.values()) == [1, 1]
    assert not queue.processing("gpu")


def test_an_idle_gpu_s_claim_announces_its_model_so_the_other_idle_gpu_takes_another(two_models):
    first, second, other = _submit("model-a"), _submit("model-a"), _submit("model-b")
    assert queue.claim("gpu", "w-1", "", gpu_id="gpu-1")[0] == first
    assert json.loads(get_redis().get(keys.gpu_loaded("gpu-1")))["name"] == "model-a"
    assert queue.claim("gpu", "w-2", "", gpu_id="gpu-2")[0] == other  # not `second`
    assert store.load(second).status == "queued"


def test_the_ticker_s_nothing_loaded_keeps_a_claim_s_announcement(two_models):
    _submit("model-a")
    queue.claim("gpu", "w-1", "", gpu_id="gpu-1")
    registry.loaded_publish("gpu-1", None)  # the ticker, before the guard heard of the claim
    assert json.loads(get_redis().get(keys.gpu_loaded("gpu-1")))["loading"] is True
    registry.loaded_publish("gpu-1", {"name": "model-a"})  # loaded; then unloaded:
    registry.loaded_publish("gpu-1", None)
    assert get_redis().get(keys.gpu_loaded("gpu-1")) is None


def test_a_gpu_s_loaded_entry_lapses_when_it_stops_refreshing_it(two_models):
    task_id = _submit("model-a")
    registry.loaded_publish("gpu-gone", {"name": "model-a"})
    assert queue.claim("gpu", "w-here", "", gpu_id="gpu-here")[0] is None
    ttl = get_redis().ttl(keys.gpu_loaded("gpu-gone"))
    assert 0 < ttl <= registry.LOADED_TTL_SECONDS
    get_redis().delete(keys.gpu_loaded("gpu-gone"))  # what its expiry does
    assert queue.claim("gpu", "w-here", "", gpu_id="gpu-here")[0] == task_id
    assert "gpu-gone" not in get_redis().smembers(keys.gpu_ids())


def test_a_claim_leaves_a_task_to_the_worker_holding_its_model_then_takes_it_after_the_wait(
    two_models, monkeypatch
):
    task_id = _submit("model-b")
    registry.loaded_publish("gpu-b", {"name": "model-b"})
    assert queue.claim("gpu", "w-a", "model-a", gpu_id="gpu-a")[0] is None
    assert store.load(task_id).status == "queued"
    monkeypatch.setattr(queue, "AFFINITY_WAIT_SECONDS", 0)  # as if it had waited that long
    assert queue.claim("gpu", "w-a", "model-a", gpu_id="gpu-a")[0] == task_id
