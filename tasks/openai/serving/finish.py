"""A choice's finish_reason as OpenAI names it."""

_FINISH = {"stop": "stop", "length": "length"}


def finish_of(choice: dict) -> str:
    if choice.get("tool_calls"):
        return "tool_calls"
    reason = choice.get("finish_reason")
    return _FINISH.get(reason, reason or "stop")
