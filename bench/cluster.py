"""A real Redis Sentinel deployment on loopback ports: master + two replicas + three Sentinels.

Every part is a real `redis-server` process (Sentinels run it with `--sentinel`) with its own
directory, passwords on both the data nodes and the Sentinels, and short failure timings so a
failover takes seconds. Used by tests/test_sentinel.py and bench/failover.py.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from bench.common import wait_until

MASTER_NAME = "sop"
PASSWORD = "master-pw-" + os.urandom(6).hex()
SENTINEL_PASSWORD = "sentinel-pw-" + os.urandom(6).hex()


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def _free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SentinelCluster:
    """Two replicas by default: after a failover one is left, so REDIS_WAIT_REPLICAS=1 can
    still be met without waiting for the old master to come back as a replica."""

    def __init__(
        self,
        root: Path,
        *,
        replicas: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        host: str = "127.0.0.1",
    ):
        """`host`: the address every node and Sentinel binds and is known by (another
        network namespace reaches them on a bridge address, never on loopback)."""
        self.root, self.replicas, self.host = root, replicas, host
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.nodes: dict[int, subprocess.Popen] = {}  # data nodes by port
        self.sentinels: dict[int, subprocess.Popen] = {}
        self.killed_at = 0.0  # time.monotonic() of the last kill_master

    # --- life ------------------------------------------------------------------------
    def start(self) -> "SentinelCluster":
        master = _free_port(self.host)
        self._node(master)
        self._wait_ping(master)
        for _ in range(self.replicas):
            self._node(_free_port(self.host), "--replicaof", self.host, str(master))
        # Sentinels list a master's replicas from its INFO, asked every 10 s: started once the
        # replicas are online, they know them from the first one instead of up to 10 s later.
        wait_until(lambda: _quiet(self._online_at_start) == self.replicas, what="the replicas")
        for _ in range(3):
            self._sentinel(_free_port(self.host), master)
        self._wait_settled()
        return self

    def stop(self) -> None:
        for proc in [*self.sentinels.values(), *self.nodes.values()]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def __enter__(self) -> "SentinelCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 -- lives with the process
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _node(self, port: int, *extra: str) -> None:
        data = self.root / f"node-{port}"
        data.mkdir(parents=True, exist_ok=True)
        self.nodes[port] = self._spawn(
            f"node-{port}",
            [
                redis_binary(),
                *("--port", str(port), "--bind", self.host, "--dir", str(data)),
                *("--requirepass", PASSWORD, "--masterauth", PASSWORD),
                *("--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"),
                *extra,
            ],
        )

    def _sentinel(self, port: int, master: int) -> None:
        data = self.root / f"sentinel-{port}"
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "sentinel.conf"  # a Sentinel rewrites its config: a file of its own
        conf.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {self.host}",
                    f"dir {data}",
                    f"requirepass {SENTINEL_PASSWORD}",
                    f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
                    f"sentinel monitor {MASTER_NAME} {self.host} {master} 2",
                    f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
                    f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        self.sentinels[port] = self._spawn(
            f"sentinel-{port}", [redis_binary(), str(conf), "--sentinel"]
        )

    def _wait_ping(self, port: int) -> None:
        client = redis.Redis(self.host, port, password=PASSWORD, socket_timeout=1)
        wait_until(lambda: _pings(client), timeout=30, what=f"redis on {port}")

    def _wait_settled(self) -> None:
        """Every Sentinel knows the replicas and the two other Sentinels: a failover can run."""

        def settled() -> bool:
            for port in self.sentinels:
                try:
                    info = self._sentinel_client(port).sentinel_master(MASTER_NAME)
                except redis.RedisError:
                    return False
                if info["num-slaves"] < self.replicas or info["num-other-sentinels"] < 2:
                    return False
            return self.replicas_online() == self.replicas

        wait_until(settled, what="the Sentinels to see the replicas and each other", timeout=60)

    def _online_at_start(self) -> int:
        master = next(iter(self.nodes))
        return _online(redis.Redis(self.host, master, password=PASSWORD, socket_timeout=1))

    def replicas_online(self) -> int:
        """Replicas of the current master that finished their sync (they ack writes)."""
        return _online(self.client())

    # --- what clients use ------------------------------------------------------------
    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(self.host, port) for port in self.sentinels]

    def env(self) -> dict[str, str]:
        """The service's settings for this deployment (REDIS_URL empty: unset)."""
        return {
            "REDIS_URL": "",
            "REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_PASSWORD": PASSWORD,
            "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
        }

    def _sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(
            self.host, port, password=SENTINEL_PASSWORD, socket_timeout=1, decode_responses=True
        )

    def _manager(self) -> Sentinel:
        return Sentinel(
            self.sentinel_addresses,
            sentinel_kwargs={"password": SENTINEL_PASSWORD, "socket_timeout": 0.5},
        )

    def master_port(self) -> int:
        return self._manager().discover_master(MASTER_NAME)[1]

    def client(self) -> redis.Redis:
        """A client of whichever node is master now."""
        return self._manager().master_for(
            MASTER_NAME, password=PASSWORD, socket_timeout=1, decode_responses=True
        )

    # --- faults ----------------------------------------------------------------------
    def kill_master(self) -> int:
        """SIGKILL the master now (no shutdown, no last write) -> its port. The node asked,
        not a Sentinel: a Sentinel's view may lag behind an earlier failover."""
        port = wait_until(
            self._settled_master, timeout=30, what="one master that every Sentinel names"
        )
        self.nodes[port].send_signal(signal.SIGKILL)
        self.killed_at = time.monotonic()
        self.nodes[port].wait()
        return port

    def _settled_master(self) -> int | None:
        """The master, once exactly one node says it is and every Sentinel agrees: on a loaded
        machine a Sentinel may have failed over spuriously, leaving two for a moment."""
        masters = [port for port in self.nodes if self._role(port) == "master"]
        named = {
            _quiet(
                lambda p=p: self._sentinel_client(p).sentinel_get_master_addr_by_name(MASTER_NAME)
            )
            for p in self.sentinels
        }
        if len(masters) == 1 and named == {(self.host, masters[0])}:
            return masters[0]
        return None

    def _role(self, port: int) -> str | None:
        if self.nodes[port].poll() is not None:
            return None
        client = redis.Redis(self.host, port, password=PASSWORD, socket_timeout=1)
        return _quiet(lambda: client.info("replication")["role"])

    def wait_failover(self, old_port: int, timeout: float = 60) -> int:
        """-> the new master's port, once the Sentinels have promoted one."""
        return wait_until(
            lambda: (port := _quiet(self.master_port)) not in (None, old_port) and port,
            what="the Sentinels to promote the replica",
            timeout=timeout,
        )


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _online(client: redis.Redis) -> int:
    info = client.info("replication")
    return sum(info.get(f"slave{i}", {}).get("state") == "online" for i in range(8))


def _quiet(call):
    try:
        return call()
    except redis.RedisError:
        return None
