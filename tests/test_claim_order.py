"""The order a lane's tasks are claimed in: priority, FIFO within one owner, fair share between
owners within one priority, the loaded model, GPU affinity. Table-driven at the claim level
(real Redis, the real scripts), then once through the public API with a real GPU worker.

A task here costs `tokens` units of its owner's counter (its prompt is empty, so its estimate is
its max_tokens) over its owner's share. Places that tie between owners run in id order, so the
tables use costs that never tie where the order is asserted.
"""

import re
import subprocess
from dataclasses import dataclass, field

import pytest
import requests

from models_gpu import registry
from sop_llm.access.principals import Limits
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lifecycle, lua, queue, store
from tasks.batches import lua as batch_lua
from tasks.services import task_create, task_get
from tasks.snapshot import queue_snapshot
from tests import keyring
from tests.conftest import ROOT, wait_for


@dataclass(frozen=True)
class Queue:
    name: str
    owner: str = "A"
    priority: int = 0
    tokens: int = 10
    model: str = ""  # '' = a remote task; else a local one for this model (the gpu lane)


@dataclass(frozen=True)
class Claim:
    expect: str | None  # the task's name, or None: nothing is taken
    preferred: str = ""
    gpu: str = ""


@dataclass(frozen=True)
class Finish:
    name: str
    used: int  # prompt + completion tokens it really used


@dataclass(frozen=True)
class Cancel:
    name: str  # a queued task, cancelled: its units go back to its owner


@dataclass(frozen=True)
class Case:
    steps: list
    shares: dict = field(default_factory=dict)
    loaded: dict = field(default_factory=dict)  # another GPU's id -> the model it holds


def _queue(step: Queue, shares: dict) -> str:
    data = {
        "provider": "local" if step.model else "openai",
        "model": step.model or "gpt-4o-mini",
        "prompt": "",
        "priority": step.priority,
        "params": {"max_tokens": step.tokens},
        "timeout_seconds": 30,
    }
    limits = Limits(share=shares.get(step.owner))
    view, _ = task_create(data=data, idempotency_key=None, owner=step.owner, limits=limits)
    return view["task_id"]


def _claim(step: Claim, lane: str) -> str | None:
    task = lifecycle.task_claim(
        lane=lane, worker="w", preferred_model=step.preferred, gpu_id=step.gpu
    )
    return task.task_id if task else None


def _finish(task_id: str, used: int) -> None:
    task = store.load(task_id)
    usage = {"prompt_tokens": 0, "completion_tokens": used}
    assert lifecycle.task_complete(task, fields={"usage": usage}, effects=store.Effects())


CASES = {
    "priority first, FIFO within one": Case(
        [
            Queue("p0"),
            Queue("p5", priority=5),
            Queue("m1", priority=-1),
            Queue("p5b", priority=5),
            Claim("p5"),
            Claim("p5b"),
            Claim("p0"),
            Claim("m1"),
            Claim(None),
        ]
    ),
    "a later owner is served next, then the two alternate": Case(
        [
            *(Queue(f"a{n}") for n in range(5)),
            Claim("a0"),
            Queue("b0", owner="B", tokens=7),
            Queue("b1", owner="B", tokens=7),
            Queue("b2", owner="B", tokens=7),
            Claim("b0"),  # the clock is at a0's place; b0 starts there
            Claim("b1"),  # b1 at 7, a1 at 10
            Claim("a1"),
            Claim("b2"),  # 14
            Claim("a2"),  # 20
            Claim("a3"),
            Claim("a4"),
        ]
    ),
    "priority beats fair share": Case(
        [
            Queue("a0", priority=3),
            Queue("a1", priority=3),
            Queue("b0", owner="B", tokens=1),  # B has had nothing, but asks less
            Claim("a0"),
            Claim("a1"),
            Claim("b0"),
        ]
    ),
    "a share of 2 is charged half": Case(
        [
            *(Queue(f"a{n}", tokens=12) for n in range(3)),  # places 0, 6, 12
            Claim("a0"),
            *(Queue(f"b{n}", owner="B", tokens=7) for n in range(2)),  # places 0, 7
            Claim("b0"),
            Claim("a1"),
            Claim("b1"),
            Claim("a2"),
        ],
        shares={"A": 2},
    ),
    "an owner alone takes every claim, FIFO, whatever it used": Case(
        [
            Queue("a0", tokens=100),  # place 0
            Queue("a1", tokens=10),  # place 100
            Claim("a0"),
            Finish("a0", used=1),  # gives 99 units back: the counter is at 11, yet
            Queue("a2", tokens=10),  # a2 queues behind a1
            Claim("a1"),
            Claim("a2"),
        ]
    ),
    "cancelled tasks give their places back": Case(
        [
            *(Queue(f"a{n}", tokens=100) for n in range(3)),  # places 0, 100, 200
            Cancel("a1"),
            Cancel("a2"),  # A's counter: back at 100
            Claim("a0"),
            *(Queue(f"b{n}", owner="B", tokens=30) for n in range(5)),  # 0, 30, 60, 90, 120
            Queue("a3", tokens=100),  # 100, not behind the cancelled a2
            *(Claim(f"b{n}") for n in range(4)),
            Claim("a3"),
            Claim("b4"),
        ]
    ),
    "an idle owner earns no credit": Case(
        [
            *(Queue(f"a{n}", tokens=3) for n in range(3)),
            Claim("a0"),
            Claim("a1"),
            Claim("a2"),  # the clock is at 6; B never queued before
            Queue("a3", tokens=3),  # place 9
            Queue("b0", owner="B", tokens=5),  # place 6, not 0: and no run of B's below 9
            Queue("b1", owner="B", tokens=5),  # place 11
            Claim("b0"),
            Claim("a3"),
            Claim("b1"),
        ]
    ),
    "the loaded model is taken from the head's band": Case(
        [
            Queue("x0", model="model-x"),
            Queue("y0", model="model-y"),
            Queue("y1", model="model-y", priority=-1),
            Claim("y0", preferred="model-y"),
            Claim("x0", preferred="model-y"),  # not y1: a lower band
            Claim("y1", preferred="model-y"),
        ]
    ),
    "GPU affinity: a task for a model another GPU holds is left to it": Case(
        [
            Queue("b0", model="model-b"),
            Queue("a0", model="model-a"),
            Claim("a0", preferred="model-a", gpu="gpu-a"),
            Claim(None, preferred="model-a", gpu="gpu-a"),
            Claim("b0", preferred="model-b", gpu="gpu-b"),
        ],
        loaded={"gpu-b": "model-b"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_claim_order(case: Case):
    for gpu, model in case.loaded.items():
        registry.loaded_publish(gpu, {"name": model})
    ids: dict[str, str] = {}
    names: dict[str, str] = {}
    lanes = {}
    for step in case.steps:
        if isinstance(step, Queue):
            ids[step.name] = _queue(step, case.shares)
            names[ids[step.name]] = step.name
            lanes[step.name] = "gpu" if step.model else "remote"
        elif isinstance(step, Finish):
            _finish(ids[step.name], step.used)
        elif isinstance(step, Cancel):
            task = store.load(ids[step.name])
            assert lifecycle.task_cancel(task, code="cancelled", message="by the test")
        else:
            lane = lanes[step.expect] if step.expect else next(iter(lanes.values()))
            claimed = _claim(step, lane)
            assert names.get(claimed) == step.expect


def test_the_shown_position_and_the_monitor_queue_are_the_claim_order():
    a = [_queue(Queue(f"a{n}"), {}) for n in range(6)]
    b = [_queue(Queue(f"b{n}", owner="B", tokens=7), {}) for n in range(3)]
    shown = {t: task_get(task_id=t)["queue"]["position"] for t in a + b}
    monitor = [p["task_id"] for p in queue_snapshot()["lanes"]["remote"]["pending"]]
    claimed = [_claim(Claim(None), "remote") for _ in range(9)]
    assert sorted(shown, key=shown.get) == monitor == claimed
    assert claimed.index(b[2]) < claimed.index(a[3])  # not FIFO across owners: fair


def test_a_newcomer_s_tasks_each_start_within_two_claims_of_a_40_task_backlog():
    backlog = [_queue(Queue(f"a{n}"), {}) for n in range(40)]
    order = [_claim(Claim(None), "remote") for _ in range(3)]
    newcomer = [_queue(Queue(f"b{n}", owner="B"), {}) for n in range(4)]
    order += [_claim(Claim(None), "remote") for _ in range(41)]
    assert set(order) == set(backlog + newcomer)
    after = order[3:]
    assert [after.index(t) < 2 * (n + 1) for n, t in enumerate(newcomer)] == [True] * 4


@pytest.mark.parametrize("shares", [{"A": 2, "B": 1}, {"A": 1, "B": 3}])
def test_shares_split_a_long_run_of_claims(shares):
    for n in range(300):
        _queue(Queue(f"a{n}", tokens=60), shares)
        _queue(Queue(f"b{n}", owner="B", tokens=60), shares)
    owners = [store.load(_claim(Claim(None), "remote")).owner for _ in range(300)]
    ratio = owners.count("A") / owners.count("B")
    wanted = shares["A"] / shares["B"]
    print(f"\nshares {shares}: {owners.count('A')} A / {owners.count('B')} B claims")
    assert abs(ratio - wanted) <= 0.1 * wanted


def test_a_final_task_corrects_its_owner_s_counter_to_what_it_used():
    task_id = _queue(Queue("a0", tokens=100), {})
    counter = f"{queue.band(0)}|A"
    owners = keys.queue_fair_owners("remote")
    assert get_redis().hget(owners, counter) == "100"
    _claim(Claim(None), "remote")
    _finish(task_id, used=30)
    assert get_redis().hget(owners, counter) == "30"


SCRIPTS = ["create", "claim", "gpu_affinity", "transition"]
BATCH_SCRIPTS = ["move", "progress", "skip", "release"]


@pytest.mark.parametrize(
    "path", [f"tasks/lua/{n}" for n in SCRIPTS] + [f"tasks/batches/lua/{n}" for n in BATCH_SCRIPTS]
)
def test_a_script_reads_its_arguments_by_name_at_its_top_only(path):
    source = (ROOT / f"{path}.lua").read_text()
    header = [line for line in source.splitlines() if re.match(r"local \w+ = (KEYS|ARGV)\[", line)]
    uses = re.findall(r"(?:KEYS|ARGV)\[\d+\]", source)
    assert len(uses) == len(header)  # no ARGV[n] in a script's body


def test_a_caller_names_every_argument_and_no_other():
    with pytest.raises(TypeError, match=r"missing \['run_seen'\], unknown \['runs'\]"):
        lua.TRANSITION.argv(status="x", allowed="", effects="[]", runs=1)
    assert lua.TRANSITION.args == ("status", "allowed", "effects", "run_seen")
    assert lua.CLAIM.keys == ("pending", "processing", "gpu_ids", "fair_clock")
    assert batch_lua.MOVE.args == ("status", "allowed", "now", "batch_id", "final")
    assert batch_lua.MOVE.rest and not batch_lua.SKIP.rest


@pytest.mark.parametrize("folder", ["tasks/lua", "tasks/batches/lua"])
def test_the_lua_files_ship_with_the_package(folder):
    """Found through importlib.resources, tracked by git, and named in the package data."""
    listed = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    on_disk = sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).glob("*.lua"))
    assert on_disk and set(on_disk) <= set(listed)
    assert '"lua/*.lua"' in (ROOT / "pyproject.toml").read_text()


# Through the public API: two keys, a real GPU worker with two slots.

BODY = {"provider": "local", "model": "gemma", "prompt": "Count: 1, 2,"}


def _post(base: str, key: str) -> str:
    body = {**BODY, "params": {"max_tokens": 6, "temperature": 0}}
    headers = {"Authorization": f"Bearer {key}"}
    response = requests.post(f"{base}/api/v1/tasks", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


@pytest.mark.slow
def test_a_second_key_s_tasks_start_within_two_admissions_on_a_busy_gpu(processes):
    if not (ROOT / "models" / "gemma-3-270m-q4_k_m.gguf").exists():
        pytest.skip("the model is not installed (make install)")
    _, big = keyring.issue("tasks", name="big")
    _, small = keyring.issue("tasks", name="small")
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="2")
    backlog = [_post(base, big) for _ in range(40)]
    wait_for(lambda: len(queue.processing("gpu")) == 2, what="both slots busy", timeout=120)
    newcomer = [_post(base, small) for _ in range(4)]
    final = [wait_for(lambda t=t: _final(t), what="every task", timeout=300) for t in backlog]
    final += [wait_for(lambda t=t: _final(t), what="every task", timeout=300) for t in newcomer]
    assert all(t.status == "completed" for t in final), [t.error for t in final if t.error]
    by_start = sorted(final, key=lambda t: (t.started_at, t.task_id))
    arrived = min(store.load(t).queued_at for t in newcomer)
    after = [t.task_id for t in by_start if t.started_at >= arrived]
    places = [after.index(t) for t in newcomer]
    print(f"\nthe newcomer's admissions after it queued: {places} (of {len(after)})")
    assert all(place < 2 * (n + 1) for n, place in enumerate(places)), places


def _final(task_id: str) -> store.Task | None:
    task = store.load(task_id)
    return task if task.final else None
