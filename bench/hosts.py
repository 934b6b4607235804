"""Hosts of their own on one machine: Linux network namespaces on a bridge.

Each host is a network namespace with one veth link to a bridge in the root namespace and an
address of its own; every process started on it also gets a UTS namespace with the host's name,
so `socket.gethostname()` and every address it sees are that host's, as on another machine. The
root namespace holds the bridge's address: Redis and its Sentinels listen there (the "Redis
host"), and the tests reach the web host through it.

    with Hosts(["web", "host-b"]) as hosts:
        hosts.address("web")            # 10.x.y.11
        hosts.wrap("host-b", argv)      # argv, run on host-b

Making namespaces needs root and iproute2; `namespaces_unavailable()` says why not, for a skip.
"""

import os
import random
import shutil
import subprocess

from bench.common import Service

FIRST_HOST = 11  # addresses .11, .12, ... on the bridge's /24; .1 is the bridge


def namespaces_unavailable() -> str | None:
    """None when this machine lets us make network namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add): the tests run as a user here"
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (iproute2, util-linux)"
    probe = f"sop-probe-{os.urandom(3).hex()}"
    made = _ip_quiet("netns", "add", probe)
    if made is not None:
        return f"`ip netns add` is refused here: {made}"
    _ip_quiet("netns", "del", probe)
    return None


class Hosts:
    def __init__(self, names: list[str]):
        self.names, self.tag = list(names), os.urandom(2).hex()
        self.prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        self.bridge = f"sopbr{self.tag}"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge: where the Redis host listens."""
        return f"{self.prefix}.1"

    def address(self, name: str) -> str:
        return f"{self.prefix}.{FIRST_HOST + self.names.index(name)}"

    def namespace(self, name: str) -> str:
        return f"sop-{self.tag}-{name}"

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        """`argv` run on host `name`: in its network namespace, under its hostname."""
        set_name = 'hostname "$0" && exec "$@"'
        return [
            *("ip", "netns", "exec", self.namespace(name)),
            *("unshare", "--uts", "--", "sh", "-c", set_name, name, *argv),
        ]

    def start(self) -> "Hosts":
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, name in enumerate(self.names):
            self._link(index, name)
        return self

    def _link(self, index: int, name: str) -> None:
        ns, outer = self.namespace(name), f"sop{self.tag}v{index}"
        _ip("netns", "add", ns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{self.address(name)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def stop(self) -> None:
        for name in self.names:  # deleting a namespace deletes its end of the veth, and both
            _ip_quiet("netns", "del", self.namespace(name))
        _ip_quiet("link", "del", self.bridge)

    def __enter__(self) -> "Hosts":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class HostedService(Service):
    """The service with each of its processes on one of the hosts (`placement`: process
    name -> host name; the web process is named "web")."""

    def __init__(self, hosts: Hosts, placement: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.hosts, self.placement = hosts, placement

    @property
    def address(self) -> str:
        return self.hosts.address(self.placement["web"])

    def start(self, name: str, args: list[str], **env) -> subprocess.Popen:
        return super().start(name, self.hosts.wrap(self.placement[name], args), **env)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _ip_quiet(*args: str) -> str | None:
    """-> None, or what `ip` said when it failed."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")
