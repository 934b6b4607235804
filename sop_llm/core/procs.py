"""This process as others see it: its liveness record, whether a pid lives, its memory."""

import json
import os
import socket
import time

MB = 1024 * 1024


def hostname() -> str:
    """This machine's name in liveness records and GPU locks (SOP_LLM_HOSTNAME overrides it:
    containers, and the tests that play several hosts on one machine)."""
    from django.conf import settings

    return settings.SOP_LLM_HOSTNAME or socket.gethostname()


def process_record(name: str, **extra) -> str:
    """What a process announces in Redis so others can judge whether it still lives."""
    return json.dumps({"name": name, "pid": os.getpid(), "host": hostname(), **extra})


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it just is not ours
    return True


def provably_dead(record: str) -> bool:
    """True only when the record's process ran on this host and its pid is gone.
    On another host a pid says nothing: there the record's TTL decides."""
    try:
        info = json.loads(record)
    except ValueError:
        return False
    return info.get("host") == hostname() and not pid_alive(int(info["pid"]))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def process_started_at() -> float:
    """When this process started (epoch seconds), from the kernel's record: not when some
    module happened to be imported (Django imports views at the first request)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    except (OSError, IndexError, ValueError):  # no procfs: as close as we can tell
        return time.time()
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - age
