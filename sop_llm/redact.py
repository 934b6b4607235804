"""Secrets never leave the process in clear: not in logs, reports, events or responses."""

import logging
import re
from typing import Any

from django.conf import settings

REDACTED = "***"
_SECRET_NAMES = re.compile(r"(api[_-]?key|authorization|secret|token|password|x-api-key)", re.I)
_SECRET_SETTINGS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
    "WEBHOOK_SECRET",
)
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def known_secrets(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    values = [getattr(settings, name, None) for name in _SECRET_SETTINGS]
    values += list(settings.API_KEYS) + list(extra)
    return sorted({v for v in values if v and len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


def scrub(text: str, extra: list[str] | tuple[str, ...] = ()) -> str:
    """Replace every known secret value (settings' and the caller's) inside free text."""
    for secret in known_secrets(extra):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, extra: list[str] | tuple[str, ...] = ()) -> Any:
    """A deep copy with secret-named fields masked and known secret values scrubbed."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if _SECRET_NAMES.search(str(k)) and v else redact(v, extra))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, extra) for item in value]
    if isinstance(value, str):
        return scrub(value, extra)
    return value


class RedactingFilter(logging.Filter):
    """Scrubs configured secrets out of every log record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the caller's bug; never lose the log line
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
