"""Features that follow the task core register here, so the core calls them without importing
them (the Batch API is one; a new one adds a hook, not an import in the lifecycle).

A finish hook sees every final status change of the tasks it `applies` to: `effects` adds
writes to the same atomic step as the status (so a line and its task never disagree), and
`after` runs once the status is stored, retried by the lifecycle through a Redis outage.
A recovery hook runs wherever the workers recover lost tasks (start-up, heartbeat sweep).
"""

from collections.abc import Callable
from dataclasses import dataclass

from tasks.store import Effects, Task


@dataclass(frozen=True)
class FinishHook:
    name: str
    applies: Callable[[Task], bool]
    effects: Callable[[Task, str, dict, Effects], None]
    after: Callable[[Task], object]


# Keyed by name: registering twice (a second `ready()`) replaces instead of running twice.
_FINISH: dict[str, FinishHook] = {}
_RECOVER: dict[str, Callable[[], object]] = {}


def finish_hook_add(hook: FinishHook) -> None:
    _FINISH[hook.name] = hook


def finish_hooks(task: Task) -> list[FinishHook]:
    return [hook for hook in _FINISH.values() if hook.applies(task)]


def recover_hook_add(name: str, recover: Callable[[], object]) -> None:
    _RECOVER[name] = recover


def recover_hooks_run() -> None:
    for recover in _RECOVER.values():
        recover()
