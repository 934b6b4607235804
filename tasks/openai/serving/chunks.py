"""The one chunk writer of the chat and completions streams: every chunk is this envelope
(`chat.completion.chunk` or `text_completion`) around choices the endpoint's module shapes."""

import time

from tasks.openai.serving.objects import shape
from tasks.result import TaskResult


def chunk_object(task_id: str, model: str, *, chat: bool, choices: list[dict]) -> dict:
    endpoint = shape(chat)
    return {
        "id": f"{endpoint.ID_PREFIX}-{task_id}",
        "object": endpoint.CHUNK_OBJECT,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def chunk(
    task_id: str,
    model: str,
    *,
    chat: bool,
    text: str | None = None,
    finish: str | None = None,
    role: bool = False,
    usage: dict | None = None,
) -> dict:
    """A relayed chunk: the role (chat), some text, the finish_reason, or the usage alone."""
    if usage:
        return {**chunk_object(task_id, model, chat=chat, choices=[]), "usage": usage}
    choice = shape(chat).relayed(text=text, finish=finish, role=role)
    return chunk_object(task_id, model, chat=chat, choices=[choice])


def whole_chunks(task: dict, model: str, *, chat: bool) -> list[dict]:
    """Each choice of a finished task as two chunks: its content (or tool calls) with its
    logprobs, then its finish_reason."""
    endpoint, chunks = shape(chat), []
    for index, choice in enumerate(TaskResult.from_record(task["result"]).choices):
        chunks += [endpoint.whole(index, choice), endpoint.whole_end(index, choice)]
    return [chunk_object(task["task_id"], model, chat=chat, choices=[c]) for c in chunks]
