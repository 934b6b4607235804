"""The one outbound HTTP seam of the JSON providers: requests in, ProviderError out."""

import json
from typing import Any

import requests

from sop_llm.core.backoff import parse_retry_after
from sop_llm.providers.errors import ProviderError, error_for_status

_session = requests.Session()
_DETAIL_LIMIT = 500


def post_json(
    url: str,
    body: Any,
    *,
    headers: dict[str, str],
    timeout: float,
    provider: str,
    model: str,
    method: str = "POST",
) -> dict | list:
    """Send JSON, return the decoded JSON answer, or raise a classified ProviderError."""
    who = f"{provider} ({model})"
    response = _send(method, url, body, headers, timeout, who, provider=provider, model=model)
    if response.status_code >= 300:
        raise error_for_status(
            response.status_code,
            _detail(response),
            provider=provider,
            model=model,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            f"{who} answered with a body that is not JSON: {response.text[:200]!r}",
            code="bad_response",
            retryable=False,
            status=response.status_code,
            provider=provider,
            model=model,
        ) from None


def _send(method, url, body, headers, timeout, who, **names) -> requests.Response:
    try:
        return _session.request(
            method, url, json=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        message, code = f"{who} did not answer within {timeout:g}s", "timeout"
    except requests.RequestException as exc:
        message, code = f"{who} could not be reached: {type(exc).__name__}", "connection"
    raise ProviderError(message, code=code, retryable=True, **names)


def _detail(response: requests.Response) -> str:
    """The remote's own error message when it sent one in a known shape, else the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:_DETAIL_LIMIT] or response.reason or ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        parts = [error.get("code") or error.get("type"), error.get("message")]
        return ": ".join(str(p) for p in parts if p)[:_DETAIL_LIMIT]
    if isinstance(error, str):
        return error[:_DETAIL_LIMIT]
    return json.dumps(data)[:_DETAIL_LIMIT]


def bad_response(provider: str, model: str, what: str) -> ProviderError:
    return ProviderError(
        f"{provider} ({model}) answered in an unexpected shape: {what}",
        code="bad_response",
        retryable=False,
        provider=provider,
        model=model,
    )
