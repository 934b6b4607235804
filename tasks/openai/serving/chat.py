"""Chat Completions' shapes of an answer: a chat.completion's choices, and the deltas of its
chat.completion.chunk stream (written by chunks.py)."""

from tasks.result import ResultChoice

ID_PREFIX = "chatcmpl"
OBJECT = "chat.completion"
CHUNK_OBJECT = "chat.completion.chunk"


def _message(choice: ResultChoice) -> dict:
    calls = choice.tool_calls
    message = {
        "role": "assistant",
        "content": None if calls else choice.text,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def choice_object(index: int, choice: ResultChoice) -> dict:
    body = {"message": _message(choice), "logprobs": choice.chat_logprobs}
    return {"index": index, **body, "finish_reason": choice.finish}


def relayed(*, text: str | None, finish: str | None, role: bool) -> dict:
    """A relayed chunk's choice: the role first, then text deltas, then the finish_reason."""
    if role:
        delta = {"role": "assistant", "content": ""}
    else:
        delta = {"content": text} if text is not None else {}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def whole(index: int, choice: ResultChoice) -> dict:
    """A whole choice's first chunk: its content or tool calls, with its logprobs."""
    calls = choice.tool_calls
    delta = (
        {"tool_calls": [{"index": k, **call} for k, call in enumerate(calls)]}
        if calls
        else {"content": choice.text}
    )
    delta = {"role": "assistant", **delta}
    return {
        "index": index,
        "delta": delta,
        "logprobs": choice.chat_logprobs,
        "finish_reason": None,
    }


def whole_end(index: int, choice: ResultChoice) -> dict:
    return {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.finish}
