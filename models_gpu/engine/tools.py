"""Tool calling on the local model: a documented generic format, held by llguidance.

The format (the development model's GGUF carries no chat template, so there is no template tool
format to use; every local model gets this one):

- A system message lists the tools (name, description, JSON schema of the arguments) and says
  that a call is answered as exactly one JSON object `{"name": ..., "arguments": {...}}`.
- The answer is constrained by an llguidance Lark grammar built from the tools' schemas:
  `required` allows only a call (to any tool), a named `tool_choice` only a call to that tool,
  `auto` either a call or plain text that does not begin with `{` (the model chooses with its
  first token; once it has chosen `{`, the call is held to the schema to its end). So a call's
  arguments are valid against the function's schema by construction.
- One call per answer: `parallel_tool_calls: true` permits several, one is what the grammar lets
  the model write (`false` is honoured by construction).
- In the history, an assistant turn's `tool_calls` are shown as the JSON it would have written,
  and a `tool` message as the template's tool turn (or a user turn reading "Tool result:").
"""

import json
import uuid
from dataclasses import replace

from grammars.bounds import bounded
from grammars.compile import JSON_OPTIONS
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, Message

INSTRUCTIONS = (
    "You can call the tools below. To call one, answer with only a JSON object "
    '{{"name": <tool name>, "arguments": <its arguments>}} and nothing else.{choice}\n\n'
    "Tools:\n{tools}"
)
CHOICE = {
    "auto": " Otherwise answer in plain text.",
    "format": " Otherwise answer with a JSON value in the answer format.",
    "required": " You must call a tool.",
}


def active(request: GenerateRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def named(request: GenerateRequest) -> str | None:
    choice = request.tool_choice
    return choice["function"]["name"] if isinstance(choice, dict) else None


def _functions(request: GenerateRequest) -> list[dict]:
    name = named(request)
    functions = [t["function"] for t in request.tools or []]
    return [f for f in functions if name is None or f["name"] == name]


def prompt_request(request: GenerateRequest) -> GenerateRequest:
    """The request as the model sees it: tools described, calls in the history as text."""
    messages = [_as_text(m) for m in request.messages or []]
    if request.response_format.description:  # the grammar holds the shape; this says what for
        note = f"Answer with a JSON value: {request.response_format.description}"
        messages.insert(0, Message("system", note))
    if active(request):
        lines = [_describe(f) for f in _functions(request)]
        name = named(request)
        choice = f" You must call {name}." if name else CHOICE.get(_choice_key(request), "")
        text = INSTRUCTIONS.format(choice=choice, tools="\n".join(lines))
        messages.insert(0, Message("system", text))
    return replace(request, messages=messages)


def _choice_key(request: GenerateRequest) -> str:
    structured = request.response_format.structured and request.tool_choice == "auto"
    return "format" if structured else str(request.tool_choice)


def _describe(function: dict) -> str:
    schema = json.dumps(function.get("parameters") or {"type": "object"})
    return f"- {function['name']}: {function.get('description', '')} Arguments: {schema}"


def _as_text(message: Message) -> Message:
    if not message.tool_calls:
        return Message(message.role, message.content, name=message.name)
    calls = [
        {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
        for c in message.tool_calls
    ]
    shown = [json.dumps(call, separators=(",", ":")) for call in calls]  # as the grammar writes
    content = "\n".join(filter(None, [message.content, *shown]))
    return Message(message.role, content, name=message.name)


def grammar(request: GenerateRequest) -> str:
    """The llguidance grammar of an answer under this request's tool_choice."""
    import llguidance

    calls = [_call_schema(f) for f in _functions(request)]
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    # Compact JSON, as response formats get (grammars.compile): free whitespace lets a sampled
    # answer spend its max_tokens on blanks.
    schema = {**schema, "x-guidance": JSON_OPTIONS}
    lark = f'start: " "? ({_body(request)})\ncall: %json {json.dumps(schema)}\n{_other(request)}\n'
    compiled = llguidance.grammar_from("lark", lark)
    error = llguidance.LLMatcher.validate_grammar(compiled)
    if error:
        raise ProviderError(
            f"local: a tool's parameters cannot be enforced: {error.strip().splitlines()[0]}",
            code="bad_request",
            provider="local",
        )
    return compiled


def _body(request: GenerateRequest) -> str:
    if request.tool_choice != "auto":
        return "call"
    return "call | answer" if request.response_format.structured else "call | text"


def _other(request: GenerateRequest) -> str:
    """What `auto` allows beside a call: the structured format's JSON, or plain text."""
    rf = request.response_format
    if not rf.structured:
        return "text: /[^{ ][\\s\\S]*/"
    schema = bounded(rf.schema) if rf.type == "json_schema" else {"type": "object"}
    return f"answer: %json {json.dumps({**schema, 'x-guidance': JSON_OPTIONS})}"


def _call_schema(function: dict) -> dict:
    return {
        "type": "object",
        "properties": {
            "name": {"const": function["name"]},
            "arguments": bounded(function.get("parameters") or {"type": "object"}),
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def tool_calls_of(text: str, names: set[str] | None = None) -> list[dict] | None:
    """The call in a constrained answer, in OpenAI's shape; None for a plain-text answer or
    one in the response format (a JSON value that is not a call to one of `names`)."""
    if not text.strip().startswith("{"):
        return None
    call = json.loads(text)
    if names is not None and not _is_call(call, names):
        return None
    arguments = json.dumps(call["arguments"], ensure_ascii=False)
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": arguments},
        }
    ]


def _is_call(value, names: set[str]) -> bool:
    return (
        isinstance(value, dict) and set(value) == {"name", "arguments"} and value["name"] in names
    )


def names_of(request: GenerateRequest) -> set[str]:
    return {f["name"] for f in _functions(request)}
