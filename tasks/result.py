"""A task's result: built once from what a provider generated, stored as a plain record in the
task's session, read back by every door. The record's keys are the stored and wire format; the
shapes every door shares (the choices, the finish reason in OpenAI's terms, chat logprobs) live
here, and a door keeps only the formatting no other door uses."""

from dataclasses import dataclass, field, fields
from typing import Any

from sop_llm.providers.types import GenerateResult

# Shown in GET /api/v1/tasks/{id} (a field's `key`, when given, is its name in the record).
PUBLIC = {"public": True}
STRUCTURED = ("enforcement", "engine", "validation")  # the structured-output report


@dataclass(frozen=True)
class ResultChoice:
    """One of the n answers (n > 1 samples each on its own)."""

    text: str = ""
    finish_reason: str | None = None
    # [{token, logprob, bytes, top_logprobs: [...]}], when asked for
    logprobs: list[dict] | None = None
    tool_calls: list[dict] | None = None  # [{id, type: function, function: {name, arguments}}]

    @classmethod
    def from_generated(cls, result: GenerateResult) -> "ResultChoice":
        return cls(result.text, result.finish_reason, result.logprobs, result.tool_calls or None)

    @classmethod
    def from_record(cls, record: dict) -> "ResultChoice":
        return cls(
            text=record.get("text") or "",
            finish_reason=record.get("finish_reason"),
            logprobs=record.get("logprobs"),
            tool_calls=record.get("tool_calls") or None,
        )

    def record(self) -> dict:
        record = {"text": self.text, "finish_reason": self.finish_reason}
        if self.logprobs is not None:
            record["logprobs"] = self.logprobs
        if self.tool_calls:
            record["tool_calls"] = self.tool_calls
        return record

    @property
    def finish(self) -> str:
        """The finish reason in OpenAI's terms: a call is `tool_calls`, an unknown end `stop`."""
        return "tool_calls" if self.tool_calls else self.finish_reason or "stop"

    @property
    def chat_logprobs(self) -> dict | None:
        """Chat Completions' (and the Responses API's) logprobs object."""
        return None if self.logprobs is None else {"content": self.logprobs, "refusal": None}


@dataclass(frozen=True)
class TaskResult:
    """The answer (its first choice, flat) and what belongs to the whole result. Fields are in
    the public view's order."""

    text: str = field(default="", metadata=PUBLIC)
    parsed: Any = field(default=None, metadata=PUBLIC)  # the JSON of a structured answer
    finish_reason: str | None = field(default=None, metadata=PUBLIC)
    provider: str | None = None  # the target that answered (a fallback's, maybe)
    model: str | None = None
    response_id: str | None = None
    enforcement: str | None = field(default=None, metadata=PUBLIC)
    engine: str | None = None
    validation: str | None = field(default=None, metadata=PUBLIC)
    logprobs: list[dict] | None = field(default=None, metadata=PUBLIC)
    tool_calls: list[dict] | None = field(default=None, metadata=PUBLIC)
    others: tuple[ResultChoice, ...] = field(default=(), metadata={**PUBLIC, "key": "choices"})
    # False: what a failed or cancelled attempt generated before it ended (no parsed answer,
    # no structured report), kept for the report.
    whole: bool = True

    @classmethod
    def from_generated(cls, result: GenerateResult) -> "TaskResult":
        first = ResultChoice.from_generated(result)
        structured = result.meta.get("structured", {})
        return cls(
            text=first.text,
            parsed=result.parsed,
            finish_reason=first.finish_reason,
            provider=result.provider,
            model=result.model,
            response_id=result.response_id,
            **{name: structured.get(name) for name in STRUCTURED},
            logprobs=first.logprobs,
            tool_calls=first.tool_calls,
            others=tuple(ResultChoice.from_generated(c) for c in result.choices),
        )

    @classmethod
    def partial(cls, result: GenerateResult) -> "TaskResult":
        """What a failed attempt generated (a truncated answer's text so far)."""
        return cls(
            text=result.text,
            finish_reason=result.finish_reason,
            provider=result.provider,
            model=result.model,
            whole=False,
        )

    @classmethod
    def cancelled(cls, text: str) -> "TaskResult":
        """The text a running task had generated when it was cancelled."""
        return cls(text=text, finish_reason="cancelled", whole=False)

    @classmethod
    def from_record(cls, record: dict | None) -> "TaskResult | None":
        """A stored record (or a public view of one) back; None when there is none. Keys an
        older record lacks read as absent."""
        if not record:
            return None
        first = ResultChoice.from_record(record)
        return cls(
            text=first.text,
            parsed=record.get("parsed"),
            finish_reason=first.finish_reason,
            provider=record.get("provider"),
            model=record.get("model"),
            response_id=record.get("response_id"),
            **{name: record.get(name) for name in STRUCTURED},
            logprobs=first.logprobs,
            tool_calls=first.tool_calls,
            others=tuple(ResultChoice.from_record(c) for c in (record.get("choices") or [])[1:]),
            whole="parsed" in record,
        )

    @property
    def choices(self) -> tuple[ResultChoice, ...]:
        """Every choice, the answer first (one unless n > 1)."""
        first = ResultChoice(self.text, self.finish_reason, self.logprobs, self.tool_calls)
        return (first, *self.others)

    @property
    def finish(self) -> str:
        """The answer's finish reason in OpenAI's terms (tool_calls / length / stop ...)."""
        return self.choices[0].finish

    @property
    def truncated(self) -> bool:
        """Cut by max_tokens (an OpenAI `length`, an incomplete response)."""
        return self.finish_reason == "length"

    def record(self) -> dict:
        """The dict stored in the task's session (and sent as is by the native door)."""
        if not self.whole:
            record = {"text": self.text, "finish_reason": self.finish_reason}
            return record | _present(provider=self.provider, model=self.model)
        record = {"choices": [c.record() for c in self.choices]} if self.others else {}
        record |= {"text": self.text, "parsed": self.parsed, "finish_reason": self.finish_reason}
        record |= {"provider": self.provider, "model": self.model}
        record |= {"response_id": self.response_id}
        record |= _present(**{name: getattr(self, name) for name in STRUCTURED})
        return record | _choice_extras(self.choices[0])

    def public(self) -> dict:
        """The view GET /api/v1/tasks/{id} shows: the public fields the record holds."""
        record = self.record()
        return {key: record[key] for key in self.public_names() if key in record}

    @classmethod
    def public_names(cls) -> list[str]:
        """Every key public() can return."""
        return [f.metadata.get("key", f.name) for f in fields(cls) if f.metadata.get("public")]


def _present(**values: Any) -> dict:
    return {name: value for name, value in values.items() if value is not None}


def _choice_extras(choice: ResultChoice) -> dict:
    record = choice.record()
    return {name: record[name] for name in ("logprobs", "tool_calls") if name in record}
