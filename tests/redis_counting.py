"""Counting the Redis commands a piece of work costs, by who sent them (a test helper).

MONITOR on a Redis of the test's own (nobody else's commands in the count) sees every command
as Redis runs it: those a client sent (a pipeline's commands one by one) and those a Lua
script ran (`client_type == "lua"`). Each client command is put down to the process that holds
its connection (read from /proc), so a count says which process issued what.

A window starts and ends with an `ECHO` mark sent by the counter itself: work done between two
marks (N requests, each started after the previous answered) is what is counted. A request's
tail (the worker's bookkeeping after the answer) may fall after the second mark; the previous
request's tail then fell inside the first: in a steady state the count is the same.
"""

import contextlib
import glob
import os
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

import redis

MARK = "sop-llm-count-mark"


@dataclass
class Command:
    source: str  # the process's role, "lua" for a script's own command, "?" when unknown
    name: str  # the command, upper case
    args: tuple[str, ...]


@dataclass
class Count:
    commands: list[Command] = field(default_factory=list)

    @property
    def sent(self) -> list[Command]:
        """What clients sent (each command of a pipeline counted)."""
        return [c for c in self.commands if c.source != "lua"]

    @property
    def scripted(self) -> list[Command]:
        return [c for c in self.commands if c.source == "lua"]

    def per(self, n: int) -> dict[str, float]:
        return {
            "sent": len(self.sent) / n,
            "in_lua": len(self.scripted) / n,
            "total": len(self.commands) / n,
        }

    def breakdown(self, n: int, *, by_key: bool = False) -> list[tuple[str, str, float]]:
        """(source, command [and the shape of its key], per unit of work), most frequent
        first."""
        counts = Counter(
            (c.source, f"{c.name} {_shape(c.args)}" if by_key else c.name) for c in self.commands
        )
        return [(s, name, k / n) for (s, name), k in counts.most_common()]


_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{32}|[0-9a-f]{6,}(?=:)|\d{4}-\d\d-\d\d|\d+(\.\d+)?"
)


def _shape(args: tuple[str, ...]) -> str:
    """A key with its ids and numbers replaced: `test-1a2b:session:{id}` -> `session:#`."""
    key = args[0] if args else ""
    return _ID.sub("#", key.split(":", 1)[1] if key.startswith(("test-", "rt-")) else key)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _local_ports() -> dict[str, int]:
    """socket inode -> local TCP port, for every TCP socket of this machine."""
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                lines = rows.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            ports[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    return ports


def ports_of(roles: dict[str, int]) -> dict[int, str]:
    """Local port -> role, for every TCP connection of each (role -> pid) process."""
    by_inode = _local_ports()
    owned = {}
    for role, pid in roles.items():
        for inode in _socket_inodes(pid):
            if inode in by_inode:
                owned[by_inode[inode]] = role
    return owned


class CommandCounter:
    """MONITOR on `url` while a `with` block runs; `mark()` opens and closes windows.

    `roles` maps a role name to the pid of a process whose connections count as that role's
    (connections opened later are looked up again as they appear); with `proxy`, the
    processes reach Redis through that RoundTripProxy."""

    def __init__(self, url: str, roles: dict[str, int], proxy: "RoundTripProxy | None" = None):
        self.url, self.roles, self.proxy = url, roles, proxy
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.lines: list[dict] = []
        self.marks: list[int] = []
        self._marked = threading.Condition()
        self._ports: dict[int, str] = {}

    def __enter__(self) -> "CommandCounter":
        self._monitor = self.client.monitor()
        self._connection = self._monitor.__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        self.mark()  # MONITOR is on once its first mark comes back
        return self

    def _listen(self) -> None:
        try:
            for line in self._connection.listen():
                if line["command"] == f"ECHO {MARK}":
                    with self._marked:
                        self.marks.append(len(self.lines))
                        self._marked.notify_all()
                else:
                    self.lines.append(line)
        except (redis.ConnectionError, ValueError):
            return  # the monitor was closed

    def mark(self) -> None:
        """Returns once MONITOR has seen the mark: everything sent before it is counted."""
        with self._marked:
            seen = len(self.marks)
            self.client.echo(MARK)
            if not self._marked.wait_for(lambda: len(self.marks) > seen, timeout=10):
                raise AssertionError("MONITOR did not report the mark")

    def window(self, index: int = -1) -> Count:
        """The commands between a mark and the one before it (default: the last window)."""
        end = self.marks[index]
        start = self.marks[index - 1] if index != -1 or len(self.marks) > 1 else 0
        return Count([self._command(line) for line in self.lines[start:end]])

    def _command(self, line: dict) -> Command:
        name, *args = _split(line["command"])
        if line.get("client_type") == "lua":
            return Command("lua", name.upper(), tuple(args))
        port = int(line.get("client_port") or 0)
        if self.proxy is not None:  # the connection MONITOR sees is the proxy's
            port = self.proxy.clients.get(port, port)
        if port not in self._ports:
            self._ports = ports_of(self.roles)
        return Command(self._ports.get(port, "?"), name.upper(), tuple(args))

    def __exit__(self, *exc) -> None:
        self._monitor.__exit__(*exc)
        self.client.close()


def _split(command: str) -> list[str]:
    """The command's name and its first argument (its key, mostly): redis-py hands MONITOR's
    line over with the arguments joined by spaces, so later ones cannot be told apart."""
    return command.split(" ", 2)[:2]


class RoundTripProxy:
    """A TCP proxy in front of Redis that counts round trips: a client's write that follows a
    reply (or opens its connection) starts one; a pipeline's commands, in one write, are one.
    Processes pointed at `url` are counted per connection, and put down to their role like
    MONITOR's commands (`ports_of`)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.trips: Counter = Counter()  # client's port -> round trips
        self.clients: dict[int, int] = {}  # our port towards Redis -> the client's port
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, (_, port) = self.server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.clients[upstream.getsockname()[1]] = port
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            turn = {"replied": True}  # the client's next write starts a round trip
            threading.Thread(
                target=self._pump, args=(client, upstream, port, turn), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, None, turn), daemon=True
            ).start()

    def _pump(self, source, target, port: int | None, turn: dict) -> None:
        """Copy one direction; `port` is the client's when `source` is the client."""
        try:
            while data := source.recv(65536):
                with self._lock:
                    if port is not None and turn["replied"]:
                        self.trips[port] += 1
                    turn["replied"] = port is None
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def snapshot(self) -> Counter:
        with self._lock:
            return Counter(self.trips)

    def per_role(self, before: Counter, roles: dict[str, int]) -> Counter:
        """Round trips since `before`, by role ("?" for a connection of no known process)."""
        owners = ports_of(roles)
        counts: Counter = Counter()
        for port, trips in (self.snapshot() - before).items():
            counts[owners.get(port, "?")] += trips
        return counts

    def close(self) -> None:
        self.server.close()
