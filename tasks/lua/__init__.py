"""Lua scripts: each multi-key change of task state happens atomically inside Redis.

The scripts live in the .lua files beside this module (package data), one per script, each
reading its KEYS and ARGV into named locals at its top: that header is the contract, and
`Script.argv` builds ARGV from the same names, so a caller and a script cannot drift apart by
a position. Key names reach the scripts from sop_llm.core.keys (as KEYS, or as a key head/tail
pair when a script must reach a key it only learns about while running).
"""

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sop_llm.core.redis import get_redis

_NAMED = re.compile(r"^local (\w+) = (KEYS|ARGV)\[(\d+)\]", re.MULTILINE)
_REST = re.compile(r"^local FIELDS_FROM = (\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Script:
    """One script: its source and the names of its KEYS and ARGV, in order."""

    name: str
    source: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    rest: bool  # ARGV goes on past the named ones (field/value pairs)

    def keylist(self, **named) -> list[str]:
        """KEYS from named key names: every name of the header, no other."""
        return self._ordered(self.keys, named)

    def argv(self, rest: tuple | list = (), **named) -> list:
        """ARGV from named values, then `rest` (when the script reads on: FIELDS_FROM)."""
        if rest and not self.rest:
            raise TypeError(f"{self.name}.lua takes no arguments past its named ones")
        return self._ordered(self.args, named) + list(rest)

    def _ordered(self, names: tuple[str, ...], named: dict) -> list:
        if set(named) != set(names):
            missing, extra = sorted(set(names) - set(named)), sorted(set(named) - set(names))
            raise TypeError(f"{self.name}.lua: missing {missing}, unknown {extra}")
        return [named[name] for name in names]


def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath(f"{name}.lua").read_text()


def load(name: str, *, after: tuple[str, ...] = (), package: str = __package__) -> Script:
    """The script `name`.lua of `package` (this one, or a feature's own scripts folder), with
    the function files `after` prepended (they only define functions, so the whole is still
    one script, one atomic step)."""
    main = _read(package, name)
    found: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
    for local, table, index in _NAMED.findall(main):
        if int(index) != len(found[table]) + 1:
            raise ValueError(f"{name}.lua: {table}[{index}] ({local}) is out of order")
        found[table].append(local)
    rest = _REST.search(main)
    if rest and int(rest.group(1)) != len(found["ARGV"]) + 1:
        raise ValueError(f"{name}.lua: FIELDS_FROM must follow its last named argument")
    source = "\n".join([*(_read(package, part) for part in after), main])
    return Script(name, source, tuple(found["KEYS"]), tuple(found["ARGV"]), bool(rest))


@cache
def _registered(source: str):
    return get_redis().register_script(source)


def run(script: Script | str, *, keys: list[str], args: list, client=None):
    """Run a script by its SHA (loaded once per process; reloaded after a Redis restart)."""
    source = script.source if isinstance(script, Script) else script
    return _registered(source)(keys=keys, args=args, client=client or get_redis())


CREATE = load("create")
TRANSITION = load("transition")
CLAIM = load("claim", after=("gpu_affinity",))
