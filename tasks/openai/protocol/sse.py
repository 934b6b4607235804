"""OpenAI's server-sent events: each one a `data:` line of compact JSON, the stream ended by
`data: [DONE]` (errors too travel as a data line: `{"error": ...}`)."""

import json

DONE = "data: [DONE]\n\n"


def sse(data: dict) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
