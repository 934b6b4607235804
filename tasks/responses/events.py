"""OpenAI's typed streaming events of a response (sequence numbers are added by the
recorder, which alone writes a response's event stream)."""

TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.failed",  # the stream has no event of its own for a cancel
}
TERMINAL_TYPES = frozenset(TERMINAL.values())


def lifecycle(kind: str, response: dict) -> dict:
    """response.created / response.in_progress / a terminal event, with the response."""
    return {"type": kind, "response": response}


def terminal(response: dict) -> dict:
    return lifecycle(TERMINAL[response["status"]], response)


def item_added(index: int, item: dict) -> dict:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def item_done(index: int, item: dict) -> dict:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def _part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def part_added(item_id: str) -> dict:
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    return {"type": "response.content_part.added", **where, "part": _part("")}


def part_done(item_id: str, text: str) -> dict:
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    return {"type": "response.content_part.done", **where, "part": _part(text)}


def text_delta(item_id: str, delta: str) -> dict:
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    return {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}


def text_done(item_id: str, text: str) -> dict:
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    return {"type": "response.output_text.done", **where, "text": text, "logprobs": []}


def call_events(index: int, item: dict) -> list[dict]:
    """A function call, whole: its arguments are known only once the answer is complete
    (constrained decoding picks the call as a whole)."""
    where = {"item_id": item["id"], "output_index": index}
    return [
        item_added(index, {**item, "arguments": "", "status": "in_progress"}),
        {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]},
        {
            "type": "response.function_call_arguments.done",
            **where,
            "name": item["name"],
            "arguments": item["arguments"],
        },
        item_done(index, item),
    ]


def error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message, "param": None}
