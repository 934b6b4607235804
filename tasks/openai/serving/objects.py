"""A finished task -> the chat.completion or text_completion object: the envelope both share,
each choice shaped by its endpoint's module (chat.py, completions.py)."""

import time

from tasks.openai.serving import chat as chat_shape
from tasks.openai.serving import completions as completions_shape
from tasks.result import TaskResult


def shape(chat: bool):
    """The module that shapes the endpoint's choices and names its objects."""
    return chat_shape if chat else completions_shape


def usage_of(task: dict) -> dict:
    usage = task.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_object(task: dict, *, chat: bool, model: str) -> dict:
    endpoint = shape(chat)
    result = TaskResult.from_record(task["result"])
    choices = [endpoint.choice_object(i, c) for i, c in enumerate(result.choices)]
    return {
        "id": f"{endpoint.ID_PREFIX}-{task['task_id']}",
        "object": endpoint.OBJECT,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_of(task),
        "system_fingerprint": None,
    }
