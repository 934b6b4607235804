"""What creating and claiming a task costs in Redis, per task: `python -m bench.claim_cost [N]`
(run from a checkout's root against REDIS_URL, so two revisions compare on one machine: the
CREATE and CLAIM scripts with and without fair share). N remote tasks from 4 owners, created
one by one, then claimed one by one, in process (no HTTP, no rq). Against a Redis of its own,
the scripts' own time in Redis is read from INFO commandstats (evalsha usec_per_call), which
the noise of a shared machine's Python processes does not reach as much."""

import os
import sys
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
os.environ["REDIS_KEY_PREFIX"] = f"cc-{uuid.uuid4().hex[:8]}:"
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

from sop_llm.core.redis import get_redis  # noqa: E402
from tasks import lifecycle  # noqa: E402
from tasks.services import task_create  # noqa: E402

BODY = {"provider": "openai", "model": "m", "prompt": "hi", "priority": 0, "params": {}}


def _script_us(client) -> float:
    """Microseconds per EVALSHA since the last reset (every script call of the phase)."""
    return float(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec_per_call", 0))


def main(n: int) -> None:
    client = get_redis()
    client.config_resetstat()
    started = time.perf_counter()
    for i in range(n):
        task_create(data=dict(BODY), idempotency_key=None, owner=f"owner-{i % 4}")
    created, create_us = time.perf_counter() - started, _script_us(client)
    client.config_resetstat()
    started = time.perf_counter()
    claimed = sum(lifecycle.task_claim(lane="remote", worker="w") is not None for _ in range(n))
    claiming, claim_us = time.perf_counter() - started, _script_us(client)
    assert claimed == n
    print(
        f"create {created / n * 1e6:.0f} us/task (script {create_us:.1f} us), "
        f"claim {claiming / n * 1e6:.0f} us/task (script {claim_us:.1f} us) (n={n})"
    )
    for key in client.scan_iter(match=f"{os.environ['REDIS_KEY_PREFIX']}*", count=1000):
        client.delete(key)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
