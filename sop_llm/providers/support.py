"""Which request fields each provider honours. A field a task gives that its provider (or one of
its fallbacks) cannot honour is refused at submit, naming the field: never sent and ignored,
never dropped on the way.

A field counts as given when the caller sent it with a value that changes something: the
neutral values below (a zero penalty, logprobs off, one choice) ask for nothing and pass
everywhere.
"""

from collections.abc import Iterable

# Native field paths whose support differs between providers.
FEATURES = (
    "params.temperature",
    "params.top_p",
    "params.top_k",
    "params.seed",
    "params.stop",
    "params.max_tokens",
    "params.presence_penalty",
    "params.frequency_penalty",
    "params.repeat_penalty",
    "params.logprobs",
    "params.top_logprobs",
    "params.logit_bias",
    "params.n",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
)
TOP_LEVEL = ("tools", "tool_choice", "parallel_tool_calls", "user")
NEUTRAL = {
    "params.presence_penalty": (0, 0.0),
    "params.frequency_penalty": (0, 0.0),
    "params.repeat_penalty": (1, 1.0),
    "params.logprobs": (False,),
    "params.top_logprobs": (0,),
    "params.logit_bias": ({},),
    "params.n": (1,),
    "params.stop": ([],),
    "tools": ([],),
    "tool_choice": ("none",),
}


def given_features(data: dict, raw_params: Iterable[str]) -> list[str]:
    """The features a task asks for: `raw_params` are the params keys the caller sent (the
    serializer fills in defaults for the others, which ask for nothing)."""
    params = data.get("params") or {}
    values = {f"params.{k}": params[k] for k in raw_params if k in params}
    values.update({k: data[k] for k in TOP_LEVEL if k in data})
    return [
        name
        for name in FEATURES
        if name in values
        and values[name] is not None
        and not any(_same(values[name], n) for n in NEUTRAL.get(name, ()))
    ]


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def unsupported(provider, features: list[str], options: dict) -> list[str]:
    """The features this provider cannot honour for a task with these options."""
    honours = provider.honours
    allowed = honours(options) if callable(honours) else honours
    return [f for f in features if f not in allowed]
