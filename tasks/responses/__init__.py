"""OpenAI's Responses API (`/v1/responses`), durable: every response is a task in Redis, its
record and its typed events beside it for the task's lifetime (issue 30)."""
