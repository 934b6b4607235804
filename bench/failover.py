"""Kill the Redis master under a steady stream of POSTs: how long until POSTs succeed again,
and how many acknowledged (202) tasks the promoted replica does not have.

    python -m bench.failover            # both runs (REDIS_WAIT_REPLICAS=0 and =1), a table

Real processes only: redis-server master + replica + three Sentinels (bench/cluster.py), the
web process (daphne) configured with REDIS_SENTINELS, and a client thread posting tasks.
"""

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.cluster import SentinelCluster, redis_binary
from bench.common import Service, wait_until

BODY = {"provider": "openai", "model": "m", "prompt": "x"}
ACKED_BEFORE_KILL = 40
ACKED_AFTER_RECOVERY = 20
REQUEST_TIMEOUT_SECONDS = 10


@dataclass
class Sent:
    started: float
    ended: float
    status: int | None  # None: no answer at all (timeout or refused)
    task_id: str | None = None


@dataclass
class PostStream:
    """One client posting tasks back to back, recording every answer."""

    url: str
    headers: dict
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                r = session.post(
                    f"{self.url}/api/v1/tasks",
                    json=BODY,
                    headers=self.headers,
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
                task_id = r.json().get("task_id") if r.status_code == 202 else None
                self.sent.append(Sent(started, time.monotonic(), r.status_code, task_id))
            except requests.RequestException:
                self.sent.append(Sent(started, time.monotonic(), None))

    def acked(self, after: float = 0.0) -> list[Sent]:
        return [s for s in self.sent if s.status == 202 and s.started >= after]


def failover_run(cluster: SentinelCluster, svc: Service, *, wait_replicas: int) -> dict:
    """The web process must be up (svc.web()); returns what was measured."""
    stream = PostStream(svc.url, svc.headers)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(stream.acked()) >= ACKED_BEFORE_KILL, what="tasks before the kill")
        old = cluster.kill_master()
        killed_at = cluster.killed_at
        wait_until(
            lambda: len(stream.acked(after=killed_at)) >= ACKED_AFTER_RECOVERY,
            timeout=60,
            what="POSTs to succeed again",
        )
    finally:
        stream.stop.set()
        thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 1)
    return _measure(stream, killed_at, old, cluster, svc) | {"wait_replicas": wait_replicas}


def _measure(stream, killed_at: float, old: int, cluster, svc) -> dict:
    first_ok = min(s.ended for s in stream.acked(after=killed_at))
    gap = [s for s in stream.sent if s.started >= killed_at and s.ended <= first_ok]
    acked = [s.task_id for s in stream.acked()]
    lost = [t for t in acked if _status(svc, t) == 404]
    return {
        "recovery_s": round(first_ok - killed_at, 2),
        "promoted": cluster.wait_failover(old) != old,
        "gap_answers": _count(s.status for s in gap),
        "slowest_answer_s": round(max(s.ended - s.started for s in stream.sent), 2),
        "acked": len(acked),
        "acked_before_kill": len([s for s in stream.acked() if s.ended < killed_at]),
        "lost": len(lost),
        "lost_ids": lost,
    }


def _status(svc: Service, task_id: str) -> int:
    return requests.get(
        f"{svc.url}/api/v1/tasks/{task_id}", headers=svc.headers, timeout=5
    ).status_code


def _count(statuses) -> dict:
    counts: dict = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def one_run(wait_replicas: int, root: Path) -> dict:
    with SentinelCluster(root) as cluster:
        svc = Service(redis_url="", extra_env=service_env(cluster, wait_replicas))
        try:
            svc.web()
            wait_until(lambda: _ready(svc), timeout=60, what="the web process")
            return failover_run(cluster, svc, wait_replicas=wait_replicas)
        finally:
            svc.stop_all()


def service_env(cluster: SentinelCluster, wait_replicas: int) -> dict:
    return {**cluster.env(), "REDIS_WAIT_REPLICAS": str(wait_replicas)}


def _ready(svc: Service) -> bool:
    try:
        return requests.get(f"{svc.url}/ready", headers=svc.headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    args = parser.parse_args()
    if redis_binary() is None:
        print("redis-server is not installed: nothing to measure", file=sys.stderr)
        return 1
    print(
        "| REDIS_WAIT_REPLICAS | run | recovery (s) | answers in the gap | slowest answer (s) "
        "| acked | acked before kill | lost |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for wait_replicas in (0, 1):
        for run in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory() as root:
                r = one_run(wait_replicas, Path(root))
            print(
                f"| {wait_replicas} | {run} | {r['recovery_s']} | {r['gap_answers']} "
                f"| {r['slowest_answer_s']} | {r['acked']} | {r['acked_before_kill']} "
                f"| {r['lost']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
