"""`count_tokens` on a local model: the prompt as the model would see it (tools described, the
chat template applied), counted by the model's own tokenizer, loaded vocabulary-only (no
weights) in the web process and kept per file: measured on the dev model, the first count
takes ~5 s (llama.cpp's import and the template's probes, on a loaded 2-core machine) and ~75
MB, later ones ~1 ms. Remote models are refused: their
vendors' tokenizers are not here."""

import atexit
import threading
from functools import cache

from models_gpu.catalog import catalog_resolve
from models_gpu.engine.chat import ChatTemplate
from models_gpu.engine.tools import prompt_request
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, Message
from tasks.anthropic_api.blocks import RequestError
from tasks.anthropic_api.translate import task_data
from tasks.targets import UnknownModel

_lock = threading.Lock()  # one llama.cpp context: one caller at a time


@cache
def _tokenizer(path: str, chat_format: str | None):
    from llama_cpp import Llama  # the compiled library only where counting is asked for

    llama = Llama(model_path=path, vocab_only=True, verbose=False, n_ctx=16)
    atexit.register(llama.close)  # while llama.cpp is loaded: its __del__ at teardown is not
    return llama, ChatTemplate(llama, chat_format)


def tokens_count(checked: dict) -> int:
    data = task_data({**checked, "max_tokens": 1})
    if data["provider"] != "local":
        raise RequestError(
            "model",
            f"counting tokens needs a local model's tokenizer; {data['provider']} models are "
            "not counted here",
        )
    try:
        info = catalog_resolve(data["model"])
    except LookupError as exc:
        raise UnknownModel(str(exc)) from None
    request = prompt_request(_generate_request(data))
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    with _lock:
        llama, template = _tokenizer(info.path, info.defaults.get("chat_format"))
        try:
            rendered = template.render(messages)
        except ProviderError as exc:  # the template refuses this conversation
            raise RequestError("messages", exc.message) from None
        tokens = llama.tokenize(rendered.text.encode(), add_bos=rendered.add_bos, special=True)
    return len(tokens)


def _generate_request(data: dict) -> GenerateRequest:
    messages = [
        Message(
            role=m["role"],
            content=m.get("content") or "",
            tool_calls=m.get("tool_calls"),
            tool_call_id=m.get("tool_call_id"),
        )
        for m in data["messages"]
    ]
    return GenerateRequest(
        model=data["model"],
        messages=messages,
        tools=data.get("tools"),
        tool_choice=data.get("tool_choice", "auto"),
    )
