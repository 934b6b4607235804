"""The plain data types every provider speaks, whatever sits behind it."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from grammars.formats import ResponseFormat

MAX_TOP_LOGPROBS = 20  # OpenAI's limit
Role = Literal["system", "user", "assistant", "tool"]
StructuredMethod = Literal["grammar", "json_schema", "tool_use", "json_mode", "none"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    # An assistant turn's calls ([{id, type: function, function: {name, arguments}}]) and the
    # call a tool message answers.
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None
    name: str | None = None  # the speaker (several agents sharing one role), OpenAI's `name`

    def to_dict(self) -> dict:
        data: dict = {"role": self.role, "content": self.content}
        for field_name in ("tool_calls", "tool_call_id", "name"):
            if getattr(self, field_name):
                data[field_name] = getattr(self, field_name)
        return data

    @property
    def spoken(self) -> str:
        """The content with its speaker in front ("alice: ..."), for the templates and APIs
        that have no field for a speaker's name (local chat templates, anthropic, custom)."""
        return f"{self.name}: {self.content}" if self.name else self.content


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = 1  # choices, each sampled on its own
    logprobs: bool = False  # the log-probability of each answer token
    top_logprobs: int = 0  # and of this many most likely tokens at each position
    logit_bias: dict = field(default_factory=dict)  # token id (int or its digits) -> -100..100
    given: tuple[str, ...] = ()  # the params the caller set (the others are our defaults)


@dataclass(frozen=True)
class Resume:
    """What an earlier run of this task generated, kept by its checkpoint: the generation goes
    on after these tokens (a local model only, the same one)."""

    model: str
    tokens: tuple[int, ...]
    emitted: int  # characters of their text already streamed
    # Called by an engine that does resume, before its first token (one that cannot, a
    # single-sequence run, starts over without calling it).
    taken: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Checkpointing:
    """How often a local generation hands its progress to `write(token ids, chars streamed)`
    (0: not by that measure). The writer must be cheap: it runs on the decode thread."""

    every_tokens: int
    every_ms: float
    write: Callable[[list[int], int], None]


@dataclass
class GenerateRequest:
    model: str
    messages: list[Message] | None = None
    prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    response_format: ResponseFormat = field(default_factory=ResponseFormat)
    timeout_seconds: float = 300.0
    # Provider-specific, e.g. base_url/api_key/headers/preset or the custom HTTP mapping.
    options: dict[str, Any] = field(default_factory=dict)
    # OpenAI's function tools ([{type: function, function: {name, description, parameters}}])
    tools: list[dict] | None = None
    tool_choice: str | dict = "auto"  # none | auto | required | {type: function, function: ...}
    parallel_tool_calls: bool = True
    user: str | None = None  # the caller's end user, passed where the vendor takes it
    # A structured answer cut by max_tokens: "fail" the attempt (fallbacks take over) or
    # "return" it unparsed with finish_reason "length", as OpenAI does (every /v1 request).
    on_max_tokens: str = "fail"
    wire: str = "chat"  # "responses": made by /v1/responses (openai: its Responses API)
    is_cancelled: Callable[[], bool] = lambda: False
    on_token: Callable[[str], None] | None = None
    # The scheduler wants the slot for a more urgent task: stop at the next step boundary.
    is_preempted: Callable[[], bool] = lambda: False
    resume: Resume | None = None
    checkpoint: Checkpointing | None = None

    @property
    def secrets(self) -> list[str]:
        """Values that must never be logged: the request's own keys and header values."""
        values = [self.options.get("api_key")]
        values += list((self.options.get("headers") or {}).values())
        return [v for v in values if isinstance(v, str) and v]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class GenerateResult:
    text: str
    finish_reason: str
    usage: Usage
    provider: str
    model: str
    response_id: str | None = None
    parsed: Any = None
    # e.g. generation_ms, load_ms, hot_path, tokens_per_second, enforcement
    timings: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict] | None = None  # [{id, type: function, function: {name, arguments}}]
    # [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], OpenAI's shape
    logprobs: list[dict] | None = None
    choices: list["GenerateResult"] = field(default_factory=list)  # n > 1: choices 1..n-1

    def to_dict(self) -> dict:
        data = asdict(self)
        data["usage"]["total_tokens"] = self.usage.total_tokens
        return data


@dataclass(frozen=True)
class ProviderCapabilities:
    chat: bool = True
    completion: bool = False
    streaming: bool = False
    structured_output: StructuredMethod = "none"
    needs_gpu: bool = False
    max_context: int | None = None
