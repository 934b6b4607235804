"""(Legacy) Completions' shapes of an answer: a text_completion's choices, and the choices of
its streamed text_completion chunks (written by chunks.py)."""

from tasks.result import ResultChoice

ID_PREFIX = "cmpl"
OBJECT = "text_completion"
CHUNK_OBJECT = "text_completion"


def legacy_logprobs(choice: ResultChoice, offset: int = 0) -> dict | None:
    """The Completions API's older shape of the logprobs."""
    entries = choice.logprobs
    if entries is None:
        return None
    offsets, at = [], offset
    for entry in entries:
        offsets.append(at)
        at += len(entry["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def choice_object(index: int, choice: ResultChoice) -> dict:
    body = {"text": choice.text, "logprobs": legacy_logprobs(choice)}
    return {"index": index, **body, "finish_reason": choice.finish}


def relayed(*, text: str | None, finish: str | None, role: bool) -> dict:
    """A relayed chunk's choice (no role chunk here): text, then the finish_reason."""
    return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}


def whole(index: int, choice: ResultChoice) -> dict:
    """A whole choice's first chunk: its text with its logprobs."""
    text, logprobs = choice.text, legacy_logprobs(choice)
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": None}


def whole_end(index: int, choice: ResultChoice) -> dict:
    return {"index": index, "text": "", "logprobs": None, "finish_reason": choice.finish}
