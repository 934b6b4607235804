"""Every request field of OpenAI's Responses API reference and what each provider does with
it, as tasks/openai/protocol/fields.py holds chat's (same cells: `yes`, `400`, `tpl`).

A response runs as a chat task, so a provider honours a field here when it honours its chat
counterpart (max_output_tokens = max_tokens, text.format = response_format). The README table
is `markdown_table(RESPONSES)` between its `responses-fields` markers; tests/
test_responses_fields.py holds it to the installed SDK and sends every `400` cell."""

from tasks.field_support import ALL, NOWHERE, SAMPLING, TOOLS

LIKE_MAX_TOKENS = ("yes", "yes", "yes", "yes", "tpl")

RESPONSES = {
    "model": (ALL, "`provider/model`, or a local name or alias"),
    "input": (
        ALL,
        "a string, or items: messages (`input_text` / `output_text` parts), `function_call`, "
        "`function_call_output`; other items and parts (images, files, reasoning) are a 400",
    ),
    "instructions": (ALL, "a system message first; not carried to the next response of a chain"),
    "max_output_tokens": (LIKE_MAX_TOKENS, "the task's max_tokens (at least 1)"),
    "temperature": (SAMPLING, "as on chat"),
    "top_p": (SAMPLING, "as on chat"),
    "tools": (TOOLS, "function tools only; local: constrained decoding, as on chat"),
    "tool_choice": (TOOLS, 'none, auto, required or {"type": "function", "name"}; needs tools'),
    "parallel_tool_calls": (TOOLS, "as on chat"),
    "text": (
        ALL,
        "`format`: text, json_object, json_schema (chat's guarantees); `verbosity` only medium",
    ),
    "stream": (ALL, "typed events with sequence_number, recorded in Redis (resumable)"),
    "stream_options": (ALL, "`include_obfuscation` only false"),
    "background": (ALL, "answers at once (queued); poll, stream later, cancel; needs store"),
    "store": (ALL, "false: not retrievable, not usable as previous_response_id"),
    "previous_response_id": (ALL, "the chain's stored input and output come first"),
    "metadata": (ALL, "kept on the task and shown with it"),
    "user": (LIKE_MAX_TOKENS, "kept on the task; anthropic: metadata.user_id"),
    "safety_identifier": (LIKE_MAX_TOKENS, "the newer name of `user`"),
    "include": (NOWHERE, "only []"),
    "truncation": (NOWHERE, "only disabled"),
    "service_tier": (NOWHERE, "only auto or default"),
    "top_logprobs": (NOWHERE, "only 0"),
    "reasoning": (NOWHERE, ""),
    "max_tool_calls": (NOWHERE, ""),
    "conversation": (NOWHERE, "use previous_response_id"),
    "prompt": (NOWHERE, "stored prompt templates"),
    "prompt_cache_key": (NOWHERE, ""),
    "prompt_cache_options": (NOWHERE, ""),
    "prompt_cache_retention": (NOWHERE, ""),
    "context_management": (NOWHERE, ""),
    "background_options": (NOWHERE, ""),
    "moderation": (NOWHERE, ""),
    "image": (NOWHERE, ""),
    "access_programs": (NOWHERE, ""),
}
