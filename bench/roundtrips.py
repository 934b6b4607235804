"""Redis round trips a remote worker makes per task, ours and rq's: `python -m bench.roundtrips [N]`
(run from a checkout's root against REDIS_URL; it counts at the connection, so it works on
any revision of the service)."""

import os
import sys
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
os.environ.setdefault("SOP_LLM_API_KEYS", "roundtrip-key-000000001")
os.environ.setdefault("WEBHOOK_SECRET", "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")
os.environ["REDIS_KEY_PREFIX"] = f"rt-{uuid.uuid4().hex[:8]}:"
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

import redis.connection as rc  # noqa: E402

from sop_llm.core.redis import get_rq_redis  # noqa: E402
from tasks.services import task_create  # noqa: E402
from tasks.worker.workers import HeartbeatWorker  # noqa: E402
from tests.fakes.servers import FakeServer, Reply, openai_chat  # noqa: E402

try:
    from sop_llm.core.lanes import rq_queue
except ImportError:
    from tasks.queue import rq_queue

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
counts = {"ours": 0, "rq": 0}
detail: dict[str, int] = {}
original = rc.Connection.send_packed_command


def counting(self, command, check_health=True):
    data = b"".join(command) if isinstance(command, list) else command
    kind = "rq" if b"rq:" in data else "ours"
    counts[kind] += 1
    if kind == "ours":
        parts = data.split(b"\r\n")
        name = parts[2].decode() if len(parts) > 2 else "?"
        detail[name] = detail.get(name, 0) + 1
    return original(self, command, check_health)


with FakeServer() as fake:
    fake.reply(Reply(200, openai_chat("hi", prompt_tokens=3, completion_tokens=1)))
    data = {
        "provider": "openai_compatible",
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"base_url": f"{fake.url}/v1"},
        "priority": 0,
        "params": {},
        "timeout_seconds": 30,
    }
    for _ in range(N):
        task_create(data=data, idempotency_key=None, owner="rt")
    rc.Connection.send_packed_command = counting
    worker = HeartbeatWorker([rq_queue("remote")], connection=get_rq_redis())
    worker.work(burst=True)
    rc.Connection.send_packed_command = original
print(
    f"{N} tasks: ours {counts['ours'] / N:.2f} round trips/task, "
    f"rq {counts['rq'] / N:.2f}, total {(counts['ours'] + counts['rq']) / N:.2f}"
)
print({k: round(v / N, 2) for k, v in sorted(detail.items(), key=lambda kv: -kv[1])})
