"""Chat Completions' shapes of an answer: a chat.completion's choices, and the deltas of its
chat.completion.chunk stream (written by chunks.py)."""

from tasks.openai.serving.finish import finish_of

ID_PREFIX = "chatcmpl"
OBJECT = "chat.completion"
CHUNK_OBJECT = "chat.completion.chunk"


def chat_logprobs(choice: dict) -> dict | None:
    entries = choice.get("logprobs")
    return None if entries is None else {"content": entries, "refusal": None}


def _message(choice: dict) -> dict:
    calls = choice.get("tool_calls")
    message = {
        "role": "assistant",
        "content": None if calls else choice.get("text", ""),
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def choice_object(index: int, choice: dict) -> dict:
    body = {"message": _message(choice), "logprobs": chat_logprobs(choice)}
    return {"index": index, **body, "finish_reason": finish_of(choice)}


def relayed(*, text: str | None, finish: str | None, role: bool) -> dict:
    """A relayed chunk's choice: the role first, then text deltas, then the finish_reason."""
    if role:
        delta = {"role": "assistant", "content": ""}
    else:
        delta = {"content": text} if text is not None else {}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def whole(index: int, choice: dict) -> dict:
    """A whole choice's first chunk: its content or tool calls, with its logprobs."""
    calls = choice.get("tool_calls")
    delta = (
        {"tool_calls": [{"index": k, **call} for k, call in enumerate(calls)]}
        if calls
        else {"content": choice.get("text", "")}
    )
    delta = {"role": "assistant", **delta}
    return {
        "index": index,
        "delta": delta,
        "logprobs": chat_logprobs(choice),
        "finish_reason": None,
    }


def whole_end(index: int, choice: dict) -> dict:
    return {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish_of(choice)}
