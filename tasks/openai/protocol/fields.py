"""Every request field of OpenAI's Chat Completions and Completions reference, and what each
provider does with it: `yes` honoured; `400` refused naming the field (its no-op value passes);
`tpl` (custom) honoured through its placeholder in options.body_template, else 400.

tests/test_openai_fields.py holds this table to the installed `openai` SDK's request types (no
field of the reference missing) and to the README's copy, and sends every `400` cell to get its
400. The README tables are `markdown_table(CHAT)` and `markdown_table(COMPLETIONS)`, pasted
between its `openai-fields` markers.
"""

from tasks.field_support import ALL, NOWHERE, PENALTY, PROVIDERS, SAMPLING, TOOLS, markdown_table

__all__ = ["CHAT", "COMPLETIONS", "PROVIDERS", "markdown_table"]
LOGPROBS = PENALTY  # Anthropic has none; a custom endpoint's shape is unknown

# field -> (cells per PROVIDERS, note)
COMMON = {
    "model": (ALL, "`provider/model`, or a local name or alias"),
    "max_tokens": (
        ("yes", "yes", "yes", "yes", "tpl"),
        "at least 1; a different max_completion_tokens beside it is a 400",
    ),
    "temperature": (SAMPLING, "anthropic: its current models fix their own sampling"),
    "top_p": (SAMPLING, "anthropic: as temperature"),
    "seed": (("yes", "yes", "400", "yes", "tpl"), ""),
    "stop": (("yes", "yes", "yes", "yes", "tpl"), "a string or up to 8 strings"),
    "presence_penalty": (PENALTY, ""),
    "frequency_penalty": (PENALTY, ""),
    "stream": (ALL, "remote providers answer in one piece: their text arrives as one chunk"),
    "stream_options": (ALL, "with stream: true; `include_usage`; `include_obfuscation` only false"),
    "user": (("yes", "yes", "yes", "yes", "tpl"), "kept on the task; anthropic: metadata.user_id"),
    "logit_bias": (
        ("yes", "400", "400", "400", "400"),
        "token id -> -100 to 100, added to its logit; ids within the local model's vocabulary; "
        "up to 1024 entries",
    ),
    "n": (
        ("yes", "yes", "yes", "yes", "400"),
        "1 to 8; local: one prefill, n decodes (batch) or n runs reusing the prompt's cache "
        "(alone); anthropic: n requests",
    ),
    # Ours, beside OpenAI's (llama.cpp's sampling):
    "top_k": (("yes", "400", "400", "yes", "tpl"), "an extension (not OpenAI's)"),
    "repeat_penalty": (("yes", "400", "400", "400", "400"), "an extension; no-op value 1"),
}
CHAT = {
    **COMMON,
    "messages": (
        ALL,
        "roles system, developer (= system), user, assistant (with tool_calls), tool (with "
        "tool_call_id); text parts only (an image part is a 400: the models served are "
        "text-only); `name`: see messages[].name",
    ),
    "messages[].name": (
        ALL,
        "the speaker (multi-agent): passed on (openai, openai_compatible), else written before "
        "the content as `name: ...`; 1-64 characters, no whitespace or markup; not on a tool "
        "message",
    ),
    "max_completion_tokens": (("yes", "yes", "yes", "yes", "tpl"), "as max_tokens"),
    "response_format": (
        ALL,
        "an object: text, json_object, json_schema (anthropic: forced tool use; custom: the "
        "answer is validated against it); a string is a 400",
    ),
    "metadata": (ALL, "kept on the task and shown with it"),
    "safety_identifier": (
        ("yes", "yes", "yes", "yes", "tpl"),
        "the newer name of `user`; both given and different is a 400",
    ),
    "logprobs": (LOGPROBS, "local: the model's raw distribution (see Logprobs)"),
    "top_logprobs": (LOGPROBS, "0 to 20; needs logprobs: true"),
    "tools": (
        TOOLS,
        "function tools; local: constrained decoding (see Tool calling); anthropic: mapped to "
        "tool_use / tool_result both ways",
    ),
    "tool_choice": (TOOLS, "none, auto, required or a named function; needs tools"),
    "parallel_tool_calls": (TOOLS, "local: false is kept by construction (one call an answer)"),
    "functions": (NOWHERE, "deprecated by OpenAI: use tools"),
    "function_call": (NOWHERE, "deprecated by OpenAI: use tool_choice; only none"),
    "audio": (NOWHERE, ""),
    "modalities": (NOWHERE, 'only ["text"]'),
    "prediction": (NOWHERE, ""),
    "reasoning_effort": (NOWHERE, ""),
    "verbosity": (NOWHERE, ""),
    "web_search_options": (NOWHERE, ""),
    "service_tier": (NOWHERE, "only auto or default"),
    "store": (NOWHERE, "only false"),
    "prompt_cache_key": (NOWHERE, ""),
    "prompt_cache_retention": (NOWHERE, ""),
    "prompt_cache_options": (NOWHERE, ""),
    "moderation": (NOWHERE, ""),
    # Fields inside fields (`[]`: of each item), where a client may send one we treat apart:
    "messages[].content[]": (ALL, "text parts only; an empty array is a 400"),
    "messages[].tool_call_id": (TOOLS, "required on a tool message"),
    "response_format.json_schema.description": (
        ALL,
        "local: told to the model in a system turn; openai, openai_compatible: passed on; "
        "anthropic: the answer tool's description; custom: an annotation",
    ),
    "response_format.json_schema.strict": (
        ALL,
        "local: enforced by the grammar either way; openai: sent only where the schema fits "
        "OpenAI's strict subset",
    ),
    "response_format.schema": (
        ALL,
        'with `"type": "json_object"`: taken as json_schema (the form llama-cpp-python\'s '
        "server and vLLM take)",
    ),
    "tools[].function.parameters": (
        TOOLS,
        "compiled at submit for local targets: a schema the grammar cannot enforce, or one no "
        "finite value fits, is a 400 naming it",
    ),
}
COMPLETIONS = {
    **COMMON,
    "prompt": (
        ALL,
        "a string, or a list of one; several prompts or token arrays are a 400 (openai, "
        "anthropic, openai_compatible: sent as one user message)",
    ),
    "logprobs": (LOGPROBS, "0 to 5 top tokens beside each answer token"),
    "best_of": (NOWHERE, "only 1"),
    "echo": (NOWHERE, "only false"),
    "suffix": (NOWHERE, 'only ""'),
}
