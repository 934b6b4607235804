"""Secrets never leave the process in clear: not in logs, reports, events or responses.

Secrets are recognised by what they are, never by a substring of a field name (`max_tokens`,
`prompt_tokens`, `top_k` and `idempotency_key` are not secrets):

- a field whose whole name is in SECRET_FIELDS (case-insensitive; `-` and `_` alike): its value;
- every value of a `headers` object: caller-supplied HTTP headers, whatever their names;
- known secret values, wherever they appear, free text included: the service's own API keys
  (`SOP_LLM_API_KEYS`), the provider keys and webhook secret from settings, and a request's own
  `api_key` and header values, plus the credential part of a header such as "Bearer <key>";
- text shaped like a credential (SECRET_SHAPES): `sk-…` keys, the credential after `Bearer`/
  `Basic`/`Token`, `whsec_…`, GitHub, Hugging Face, Slack, Google and AWS keys, JWTs, and URL
  query parameters named like a secret field (`?api_key=…`).
"""

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings

REDACTED = "***"
SECRET_FIELDS = frozenset(
    {
        "api_key",
        "apikey",
        "x_api_key",
        "api_token",
        "access_key",
        "secret_key",
        "private_key",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "webhook_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "bearer_token",
        "session_token",
    }
)
_HEADERS_FIELD = "headers"
_QUERY_NAMES = "|".join(sorted(SECRET_FIELDS | {"key"}, key=len, reverse=True))
# A shape's `keep` group (a scheme, a parameter name) stays in clear; the rest is masked.
SECRET_SHAPES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    # A credential after an auth scheme; it must hold a digit, so "Basic information" stays.
    re.compile(r"(?i)(?P<keep>\b(?:bearer|basic|token)\s+)(?=[^\s\"']*\d)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=]{16,}"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(rf"(?i)(?P<keep>[?&](?:{_QUERY_NAMES})=)[^&#\s\"']+"),
]
_SECRET_SETTINGS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "OPENAI_COMPATIBLE_API_KEY",
    "WEBHOOK_SECRET",
)
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words
# The secrets of the request being worked on in this thread/task, for the logging filter.
_in_scope: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "secrets_in_scope", default=()
)


def is_secret_field(name: Any) -> bool:
    return str(name).lower().replace("-", "_") in SECRET_FIELDS


def known_secrets(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    values = [getattr(settings, name, None) for name in _SECRET_SETTINGS]
    values += [*settings.API_KEYS, *extra, *_in_scope.get()]
    values += [_credential(v) for v in values if isinstance(v, str)]
    return sorted({v for v in values if v and len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


def _credential(value: str) -> str | None:
    """The key inside a header value such as "Bearer <key>": remotes echo the key alone."""
    parts = value.split()
    return parts[1] if len(parts) == 2 else None


@contextlib.contextmanager
def secrets_in_scope(values: list[str]) -> Iterator[None]:
    """While working on a request, its own secrets are scrubbed from every log line too."""
    token = _in_scope.set((*_in_scope.get(), *values))
    try:
        yield
    finally:
        _in_scope.reset(token)


def scrub(text: str, extra: list[str] | tuple[str, ...] = ()) -> str:
    """Free text with every known secret value and every credential-shaped string masked."""
    for secret in known_secrets(extra):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for shape in SECRET_SHAPES:
        text = shape.sub(_mask, text)
    return text


def _mask(match: re.Match) -> str:
    return (match.groupdict().get("keep") or "") + REDACTED


def redact(value: Any, extra: list[str] | tuple[str, ...] = ()) -> Any:
    """A deep copy with secret fields and header values masked and free text scrubbed."""
    if isinstance(value, dict):
        return {k: _redact_field(k, v, extra) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, extra) for item in value]
    if isinstance(value, str):
        return scrub(value, extra)
    return value


def _redact_field(name: Any, value: Any, extra) -> Any:
    if value and is_secret_field(name):
        return REDACTED
    if isinstance(value, dict) and str(name).lower() == _HEADERS_FIELD:
        return {k: REDACTED if v else v for k, v in value.items()}
    return redact(value, extra)


class RedactingFilter(logging.Filter):
    """Scrubs secrets out of every log record (message and traceback) before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the caller's bug; never lose the log line
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True
