"""Any HTTP JSON endpoint, mapped by the task itself.

options: url, method (POST), headers, body_template (JSON in which "{{prompt}}",
"{{messages}}", "{{model}}", "{{max_tokens}}", "{{temperature}}", ... are substituted; a string
that is exactly one placeholder takes the value's JSON type), response_path (dotted path to the
answer text, e.g. "data.choices.0.text"), optional usage paths and finish_reason_path.
"""

import re
import time
from typing import Any

from sop_llm.core.netguard import UnsafeURL, check_url
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.http import bad_response, post_json
from sop_llm.providers.options import CustomOptions
from sop_llm.providers.types import (
    GenerateRequest,
    GenerateResult,
    ProviderCapabilities,
    Usage,
)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
DEFAULT_TEMPLATE = {"model": "{{model}}", "prompt": "{{prompt}}", "max_tokens": "{{max_tokens}}"}
PLACEHOLDER_FIELDS = {
    name: f"params.{name}"
    for name in ("max_tokens", "temperature", "top_p", "top_k", "seed", "stop")
} | {"user": "user"}


def placeholders(template: Any) -> set[str]:
    """The placeholder names anywhere in a body template."""
    if isinstance(template, dict):
        return set().union(*(placeholders(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(placeholders(v) for v in template))
    return set(_PLACEHOLDER.findall(template)) if isinstance(template, str) else set()


def template_values(request: GenerateRequest) -> dict[str, Any]:
    p = request.params
    messages = [{"role": m.role, "content": m.spoken} for m in request.messages or []]
    prompt = (
        request.prompt if request.prompt is not None else "\n".join(m["content"] for m in messages)
    )
    return {
        "model": request.model,
        "prompt": prompt,
        "messages": messages,
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "top_k": p.top_k,
        "seed": p.seed,
        "stop": list(p.stop),
        "user": request.user,
    }


def render(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template.strip())
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)
    return template


def extract(data: Any, path: str) -> Any:
    """Follow a dotted path ("a.b.0.c"; a leading "$." is allowed) through dicts and lists."""
    current = data
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        if isinstance(current, list) and part.lstrip("-").isdigit():
            current = current[int(part)]
        elif isinstance(current, dict):
            current = current[part]
        else:
            raise KeyError(part)
    return current


class CustomHTTPProvider:
    name = "custom"
    options_serializer = CustomOptions
    capabilities = ProviderCapabilities(chat=True, completion=True, structured_output="none")

    @staticmethod
    def honours(options: dict) -> frozenset[str]:
        """A field reaches the endpoint only through its placeholder in the body template."""
        used = placeholders(options.get("body_template") or DEFAULT_TEMPLATE)
        return frozenset(PLACEHOLDER_FIELDS[name] for name in used if name in PLACEHOLDER_FIELDS)

    def generate(self, request: GenerateRequest) -> GenerateResult:
        options = request.options
        try:
            check_url(options.get("url") or "", what="options.url")
        except UnsafeURL as exc:
            raise ProviderError(
                str(exc), code="unsafe_url", provider=self.name, model=request.model
            ) from None
        body = render(options.get("body_template") or DEFAULT_TEMPLATE, template_values(request))
        started = time.perf_counter()
        data = post_json(
            options["url"],
            body,
            headers=dict(options.get("headers") or {}),
            timeout=request.timeout_seconds,
            provider=self.name,
            model=request.model,
            method=options.get("method", "POST"),
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        return self._result(data, options, request.model, elapsed_ms)

    def _result(self, data: Any, options: dict, model: str, elapsed_ms: float) -> GenerateResult:
        path = options.get("response_path") or "text"
        try:
            text = extract(data, path)
        except (KeyError, IndexError, TypeError):
            raise bad_response(self.name, model, f"no value at response_path {path!r}") from None
        if not isinstance(text, str):
            raise bad_response(self.name, model, f"value at {path!r} is not a string")
        return GenerateResult(
            text=text,
            finish_reason=str(self._optional(data, options.get("finish_reason_path")) or "stop"),
            usage=Usage(
                int(self._optional(data, options.get("prompt_tokens_path")) or 0),
                int(self._optional(data, options.get("completion_tokens_path")) or 0),
            ),
            provider=self.name,
            model=model,
            timings={"generation_ms": round(elapsed_ms, 1)},
        )

    @staticmethod
    def _optional(data: Any, path: str | None) -> Any:
        if not path:
            return None
        try:
            return extract(data, path)
        except (KeyError, IndexError, TypeError):
            return None
