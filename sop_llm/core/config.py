"""Small, loud environment readers: a bad value stops start-up with one line naming it."""

import os

from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    """A setting from the environment has a value we refuse to run with."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_int(name: str, default: int, *, min: int | None = None, max: int | None = None) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer ({_bounds(min, max)})") from None
    if (min is not None and value < min) or (max is not None and value > max):
        raise ConfigError(f"{name}={raw!r} is out of range ({_bounds(min, max)})")
    return value


def env_float(
    name: str, default: float, *, min: float | None = None, max: float | None = None
) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number ({_bounds(min, max)})") from None
    if (min is not None and value < min) or (max is not None and value > max):
        raise ConfigError(f"{name}={raw!r} is out of range ({_bounds(min, max)})")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(
        f"{name}={raw!r} is not a boolean (use one of 1/0, true/false, yes/no, on/off)"
    )


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.upper() not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw.upper()


def env_list(name: str) -> list[str]:
    raw = _raw(name)
    return [] if raw is None else [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...]) -> str | None:
    raw = _raw(name)
    if raw is None:
        return default
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme not in schemes:
        raise ConfigError(f"{name}={raw!r} is not a URL with scheme {' or '.join(schemes)}")
    return raw


def _bounds(min: float | None, max: float | None) -> str:
    if min is not None and max is not None:
        return f"allowed: {min}..{max}"
    if min is not None:
        return f"allowed: >= {min}"
    if max is not None:
        return f"allowed: <= {max}"
    return "allowed: any integer"


def env_webhook_secret(name: str) -> str | None:
    """Standard Webhooks secrets are `whsec_` + base64 of at least 24 random bytes."""
    import base64
    import binascii

    raw = _raw(name)
    if raw is None:
        return None
    try:
        decoded = base64.b64decode(raw.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        decoded = b""
    if not raw.startswith("whsec_") or len(decoded) < 24:
        raise ConfigError(
            f"{name} must look like whsec_<base64 of >= 24 random bytes> (make one: "
            "python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\")"  # noqa: E501
        )
    return raw


def env_hostports(name: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (Sentinel addresses) -> [(host, port)]; IPv6 as `[::1]:26379`."""
    pairs = []
    for item in env_list(name):
        host, sep, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}: {item!r} is not host:port (e.g. 10.0.0.5:26379)")
        pairs.append((host, int(port)))
    return pairs


def check_sentinel_settings(sentinels: list, master: str | None, url: str | None) -> None:
    if sentinels and not master:
        raise ConfigError("REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER must name the master")
    if master and not sentinels:
        raise ConfigError("REDIS_SENTINEL_MASTER is set: REDIS_SENTINELS must list the Sentinels")
    if sentinels and url:
        raise ConfigError("set REDIS_URL or REDIS_SENTINELS, not both (which one is the master?)")
