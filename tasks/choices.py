"""A finished task's choices, as the doors read its result."""


def choices_of(result: dict | None) -> list[dict]:
    """The task result's choices: `choices` when it holds several (n > 1), else itself."""
    result = result or {}
    return result.get("choices") or [result]
