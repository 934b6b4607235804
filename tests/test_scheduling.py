"""Scheduling a shared GPU (issue 29): a killed worker's task resumes from its checkpoint, its
stream goes on; a more urgent task preempts a running slot, at most MAX_PREEMPTIONS times."""

import json
import os
import signal
import threading

import jsonschema
import pytest
import requests

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import store
from tasks.checkpoints import checkpoint_load
from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}
LONG = "Count from one to two hundred in words, separated by commas:"
STORY = {
    "type": "object",
    "properties": {"story": {"type": "string", "minLength": 200, "maxLength": 320}},
    "required": ["story"],
    "additionalProperties": False,
}


def _submit(base: str, max_tokens: int, priority: int = 0, **extra) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": LONG,
        "priority": priority,
        "params": {"max_tokens": max_tokens, "temperature": 0},
        **extra,
    }
    response = requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def _final(task_id: str) -> store.Task | None:
    task = store.load(task_id)
    return task if task.final else None


def _timeline(task_id: str, event: str) -> list[dict]:
    return [e for e in store.timeline(task_id) if e["event"] == event]


def _checkpointed(task_id: str, tokens: int) -> bool:
    kept = checkpoint_load(task_id=task_id)
    return kept is not None and len(kept.tokens) >= tokens


class _SseReader(threading.Thread):
    """Reads a whole /v1 stream in the background, so the test can kill the worker meanwhile."""

    def __init__(self, response):
        super().__init__(daemon=True)
        self.response, self.chunks, self.errors = response, [], []

    def run(self) -> None:
        for line in self.response.iter_lines():
            if line.startswith(b"data: {"):
                data = json.loads(line[6:])
                (self.errors if "error" in data else self.chunks).append(data)

    @property
    def text(self) -> str:
        return "".join(c["choices"][0]["text"] for c in self.chunks if c.get("choices"))


def _kill_and_replace(processes, victim, **env) -> None:
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    processes.worker("gpu", gpu=True, **env)  # recovers the task; it resumes


def test_a_killed_worker_s_task_resumes_at_its_checkpoint_and_its_stream_goes_on(processes):
    base = processes.web()
    victim = processes.worker("gpu", gpu=True, GPU_SLOTS="2")
    body = {"model": "gemma", "prompt": LONG, "max_tokens": 128, "temperature": 0, "stream": True}
    response = requests.post(
        f"{base}/v1/completions", json=body, headers=AUTH, stream=True, timeout=300
    )
    task_id, reader = response.headers["X-SOP-Task-Id"], _SseReader(response)
    reader.start()
    wait_for(lambda: _checkpointed(task_id, 60), what="a checkpoint past token 60", timeout=120)
    _kill_and_replace(processes, victim, GPU_SLOTS="2")
    final = wait_for(lambda: _final(task_id), what="the resumed run", timeout=300)
    reader.join(timeout=60)
    assert final.status == "completed" and final.crash_count == 1
    resumed = _timeline(task_id, "resumed")
    assert len(resumed) == 1 and resumed[0]["tokens"] >= 60
    assert final.usage["completion_tokens"] == 128  # the kept tokens counted once
    assert final.result["finish_reason"] == "length"
    assert reader.errors == []  # no stream_restarted
    assert reader.text == final.result["text"]  # one continuous text, nothing repeated
    report = requests.get(f"{base}/api/v1/tasks/{task_id}/report", headers=AUTH, timeout=10)
    assert any(e["event"] == "resumed" for e in report.json()["timeline"])
    assert get_redis().get(keys.session_checkpoint(task_id)) is None  # dropped when final


def test_a_killed_worker_s_structured_task_resumes_and_its_answer_is_valid(processes):
    base = processes.web()
    victim = processes.worker("gpu", gpu=True, GPU_SLOTS="2")
    response_format = {"type": "json_schema", "json_schema": {"name": "story", "schema": STORY}}
    task_id = _submit(
        base, 200, prompt="Write a short story as JSON:", response_format=response_format
    )
    wait_for(lambda: _checkpointed(task_id, 32), what="a checkpoint", timeout=120)
    _kill_and_replace(processes, victim, GPU_SLOTS="2")
    final = wait_for(lambda: _final(task_id), what="the resumed run", timeout=300)
    assert final.status == "completed", final.error
    assert _timeline(task_id, "resumed")[0]["tokens"] >= 32
    jsonschema.validate(json.loads(final.result["text"]), STORY)


def test_an_urgent_task_preempts_a_running_slot_which_then_resumes_in_full(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="2")
    low = [_submit(base, 256) for _ in range(2)]
    wait_for(lambda: all(_checkpointed(t, 32) for t in low), what="both generating", timeout=120)
    urgent = _submit(base, 8, priority=50, prompt="Say hi.")
    done = wait_for(lambda: _final(urgent), what="the urgent task", timeout=120)
    assert done.status == "completed"
    preempted = [t for t in low if _timeline(t, "preempted")]
    assert len(preempted) == 1
    entry = _timeline(preempted[0], "preempted")[0]
    assert entry["by"] == urgent and entry["tokens"] >= 32
    finals = [wait_for(lambda t=t: _final(t), what="the low tasks", timeout=300) for t in low]
    assert all(t.status == "completed" for t in finals)
    victim = store.load(preempted[0])
    assert victim.preemptions == 1 and victim.crash_count == 0
    report = requests.get(f"{base}/api/v1/tasks/{victim.task_id}/report", headers=AUTH, timeout=10)
    assert report.json()["preemptions"] == 1
    assert _timeline(preempted[0], "resumed")[0]["tokens"] == entry["tokens"]
    # It ran on as the other one did: complete, each token counted once.
    assert victim.usage["completion_tokens"] == 256 or victim.result["finish_reason"] == "stop"
    assert done.completed_at < victim.completed_at
    metrics = requests.get(f"{base}/metrics", headers=AUTH, timeout=10).text
    assert "sop_llm_tasks_preempted_total 1" in metrics


def test_no_task_is_preempted_more_than_max_preemptions_times(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="2", MAX_PREEMPTIONS="1")
    low = [_submit(base, 200) for _ in range(2)]
    wait_for(lambda: all(_checkpointed(t, 32) for t in low), what="both generating", timeout=120)
    urgent = []
    for priority in (20, 60, 35, 90, 50, 75):  # arrivals while the low ones run
        urgent.append(_submit(base, 4, priority=priority, prompt="Say hi."))
        wait_for(lambda: _final(urgent[-1]), what="an urgent task", timeout=300)
    finals = [wait_for(lambda t=t: _final(t), what="every task", timeout=300) for t in low]
    assert all(t.status == "completed" for t in finals)
    assert all(len(_timeline(t, "preempted")) <= 1 and t.preemptions <= 1 for t in finals)
    assert sum(t.preemptions for t in finals) == 2  # each was preempted once, then kept its slot
