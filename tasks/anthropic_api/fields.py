"""Every request field of Anthropic's Messages API (the installed `anthropic` SDK's
MessageCreateParams) and ours beside it, and what each provider does with it: `yes` honoured;
`400` refused naming the field (its no-op value passes); `tpl` (custom) honoured through its
placeholder in options.body_template, else 400. The columns are the providers behind the door
(`custom` only as a native fallback target), as in tasks/openai/protocol/fields.py.

tests/test_anthropic_fields.py holds this table to the SDK, to the request checks
(protocol.KNOWN), to the README's copy (`markdown_table(MESSAGES)`, between its
`anthropic-fields` markers), and sends every `400` cell to get its 400.
"""

from tasks.field_support import ALL, NOWHERE, PROVIDERS, SAMPLING, TOOLS, markdown_table

__all__ = ["MESSAGES", "PROVIDERS", "markdown_table"]
CUSTOM_TPL = ("yes", "yes", "yes", "yes", "tpl")

# field -> (cells per PROVIDERS, note)
MESSAGES = {
    "model": (ALL, "`provider/model`, or a local name or alias, as on the OpenAI door"),
    "max_tokens": (CUSTOM_TPL, "required, at least 1"),
    "messages": (
        ALL,
        "user / assistant turns; a string or `text`, `tool_use`, `tool_result` blocks (text "
        "content); `image` and `document` are a 400 naming them (the models served are "
        "text-only); the last turn must be the user's (no prefill)",
    ),
    "system": (ALL, "a string or text blocks (joined by a blank line)"),
    "stop_sequences": (CUSTOM_TPL, "up to 8; a stop answers `end_turn` (see below)"),
    "stream": (ALL, "Anthropic's events; remote providers answer in one piece"),
    "metadata": (CUSTOM_TPL, "`user_id` only: kept on the task as its user"),
    "tools": (TOOLS, "custom (client) tools; server tools are a 400"),
    "tool_choice": (
        TOOLS,
        "auto, any, tool (by name), none; `disable_parallel_tool_use`; needs tools",
    ),
    "cache_control": (
        ALL,
        "accepted as a hint (here and on blocks): local reuses the prompt's KV cache by "
        "itself; not forwarded to remote providers",
    ),
    "thinking": (NOWHERE, 'only `{"type": "disabled"}`'),
    "service_tier": (NOWHERE, "only auto or standard_only: one tier here"),
    "container": (NOWHERE, ""),
    "context_management": (NOWHERE, "beta"),
    "diagnostics": (NOWHERE, ""),
    "inference_geo": (NOWHERE, ""),
    "mcp_servers": (NOWHERE, "beta"),
    "output_config": (NOWHERE, ""),
    "output_format": (NOWHERE, "beta"),
    "speed": (NOWHERE, ""),
    "user_profile_id": (NOWHERE, ""),
    "workspace_id": (NOWHERE, ""),
    # Ours, beside Anthropic's (its current models fix their own sampling; llama.cpp does not):
    "temperature": (SAMPLING, "an extension here (not in SDK 2.x's Messages API)"),
    "top_p": (SAMPLING, "an extension, as temperature"),
    "top_k": (("yes", "400", "400", "yes", "tpl"), "an extension, as temperature"),
    "priority": (ALL, "an extension: the task's queue priority"),
    "fallbacks": (ALL, "an extension: `provider/model` names or native targets, in order"),
}
