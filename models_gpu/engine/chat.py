"""Chat prompts for local models: which template, how our roles fit it, where a turn ends.

The template is the GGUF's own (`tokenizer.chat_template`, rendered as Jinja) when the file
carries one; otherwise the load parameter `chat_format` names one: ours (`transcript`, below) or
one of llama-cpp-python's (`gemma`, `chatml`, `llama-3`, ...). Everything else is derived from
the template by rendering probe conversations, never spelled per model:

- Roles. A template that has no place for `system` (Gemma's) gets the system text prepended to
  the next user message, followed by a blank line, as Gemma's official template does. A template
  that has no place for `tool` gets each tool message as a user message reading
  "Tool result:\\n<content>". Consecutive messages of one role are then joined with a blank line,
  because strict templates (Gemma, Mistral) refuse two user turns in a row.
- Speakers. A message's `name` (several agents sharing one role) is written before its content,
  "alice: ...", since no template has a place for it (`Message.spoken`).
- Turn ends. The text a template puts between an assistant message and the next user message
  is where a turn ends. Its special tokens (`<end_of_turn>`, `<start_of_turn>` for Gemma;
  `<|im_end|>`, `<|im_start|>` for ChatML; `<|eot_id|>`, `<|start_header_id|>` for Llama 3) stop
  generation by token id: they detokenize to nothing, so no stop string could ever see them.
  A template made of plain text (`transcript`) stops on that text instead ("\\nUser:").
"""

from dataclasses import dataclass

from sop_llm.providers.errors import ProviderError

TOOL_PREFIX = "Tool result:\n"
# Probe contents: words no template rewrites, so they can be found in what it renders.
_ROLE_PROBE, _USER_PROBE, _ANSWER_PROBE, _NEXT_PROBE = (f"zqxprobe{i}" for i in range(4))

# A plain-text dialogue for base models, which never learned any chat template's special tokens
# (Gemma 3 270M base answers garbage after `<start_of_turn>model`, but continues
# "User: …\nAssistant:" with an answer and then writes "\nUser:", where we stop).
TRANSCRIPT = (
    "{{ bos_token }}{% for m in messages %}{{ m.role | capitalize }}: {{ m.content | trim }}\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
OUR_FORMATS = {"transcript": TRANSCRIPT}


@dataclass(frozen=True)
class Rendered:
    text: str
    add_bos: bool


class ChatTemplate:
    """One loaded model's chat template, with the roles it keeps and the way its turns end."""

    def __init__(self, llama, chat_format: str | None):
        self._llama = llama
        self.source, self._format = _pick_format(llama, chat_format)
        self.roles = {"user", "assistant"} | {r for r in ("system", "tool") if self._keeps(r)}
        self.stop_tokens, self.stop_strings = self._turn_ends()

    def render(self, messages: list[dict]) -> Rendered:
        """The prompt text for these messages, roles fitted to what the template has."""
        formatted = self._call(fit_roles(messages, self.roles))
        return Rendered(formatted.prompt, add_bos=not getattr(formatted, "added_special", False))

    def _call(self, messages: list[dict]):
        try:
            return self._format(messages=messages)
        except Exception as exc:  # a Jinja template raises on conversations it refuses
            raise ProviderError(
                f"the chat template ({self.source}) refused these messages: {exc}",
                code="bad_request",
                provider="local",
            ) from None

    def _keeps(self, role: str) -> bool:
        probe = [{"role": "user", "content": _USER_PROBE}, {"role": "assistant", "content": "a"}]
        probe = [{"role": role, "content": _ROLE_PROBE}, *probe[:1]] if role == "system" else probe
        if role == "tool":
            probe.append({"role": "tool", "content": _ROLE_PROBE})
        try:
            return _ROLE_PROBE in self._format(messages=probe).prompt
        except Exception:  # the template refuses the role outright
            return False

    def _turn_ends(self) -> tuple[frozenset[int], tuple[str, ...]]:
        formatted = self._call(_boundary_probe())
        text, own = formatted.prompt, _as_list(formatted.stop)
        between = text[text.index(_ANSWER_PROBE) + len(_ANSWER_PROBE) : text.index(_NEXT_PROBE)]
        specials = special_tokens(self._llama, between)
        if specials:
            return frozenset(specials), tuple(own)
        # Plain-text markers: the next turn's header, and the assistant's own header.
        after = text[text.index(_NEXT_PROBE) + len(_NEXT_PROBE) :]
        plain = [s.rstrip() for s in (between, after) if s.strip()]
        return frozenset(), tuple(dict.fromkeys([*plain, *own]))


def _as_list(stop: str | list[str] | None) -> list[str]:
    return [s for s in ([stop] if isinstance(stop, str) else stop or []) if s]


def _boundary_probe() -> list[dict]:
    return [
        {"role": "user", "content": _USER_PROBE},
        {"role": "assistant", "content": _ANSWER_PROBE},
        {"role": "user", "content": _NEXT_PROBE},
    ]


def fit_roles(messages: list[dict], roles: set[str]) -> list[dict]:
    """Messages using only the roles a template keeps (see the module's docstring)."""
    fitted, held = [], []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system" and role not in roles:
            held.append(content)
            continue
        if role == "tool" and role not in roles:
            role, content = "user", TOOL_PREFIX + content
        if role == "user" and held:
            content, held = "\n\n".join([*held, content]), []
        fitted.append({"role": role, "content": content})
    if held:
        fitted.append({"role": "user", "content": "\n\n".join(held)})
    return _join_runs(fitted)


def _join_runs(messages: list[dict]) -> list[dict]:
    joined: list[dict] = []
    for message in messages:
        if joined and joined[-1]["role"] == message["role"]:
            joined[-1] = {**message, "content": joined[-1]["content"] + "\n\n" + message["content"]}
        else:
            joined.append(message)
    return joined


def special_tokens(llama, text: str) -> list[int]:
    """Ids of the control tokens in `text`: those that only render with special=True."""
    tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
    return [
        t
        for t in tokens
        if not llama.detokenize([t], special=False) and llama.detokenize([t], special=True)
    ]


def _pick_format(llama, chat_format: str | None):
    """(where the template comes from, a formatter): the GGUF's own first, then the named one."""
    template = llama.metadata.get("tokenizer.chat_template")
    if template:
        return "gguf", _jinja(llama, template)
    if not chat_format:
        raise ProviderError(
            "this model carries no chat template; send `prompt`, or name a chat_format in "
            'MODELS_DIR/presets.toml (e.g. chat_format = "transcript")',
            code="bad_request",
            provider="local",
        )
    if chat_format in OUR_FORMATS:
        return f"chat_format:{chat_format}", _jinja(llama, OUR_FORMATS[chat_format])
    return f"chat_format:{chat_format}", _llama_cpp_format(chat_format)


def _llama_cpp_format(chat_format: str):
    from llama_cpp import llama_chat_format as formats

    # Registered names map to function names two ways: "llama-3" -> format_llama3,
    # "mistral-instruct" -> format_mistral_instruct.
    names = {chat_format.replace("-", "").replace(".", ""), chat_format.replace("-", "_")}
    function = next(
        (getattr(formats, "format_" + n) for n in names if hasattr(formats, "format_" + n)), None
    )
    if function is None:
        raise ProviderError(
            f"unknown chat_format {chat_format!r}", code="bad_request", provider="local"
        )
    return function


def _jinja(llama, template: str):
    from llama_cpp import llama_chat_format as formats

    def vocab_token(token_id: int) -> str:
        return llama.detokenize([token_id], special=True).decode(errors="ignore")

    return formats.Jinja2ChatFormatter(
        template=template,
        eos_token=vocab_token(llama.token_eos()),
        bos_token=vocab_token(llama.token_bos()),
    )
