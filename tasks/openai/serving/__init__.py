"""The OpenAI door's logic: a request becomes an ordinary task (translate.py, answer.py), the
task's answer becomes Chat Completions' or Completions' objects (chat.py, completions.py,
objects.py) or their SSE chunks (chunks.py, the one chunk writer; stream.py relays the tokens),
and the catalog becomes /v1/models (models.py)."""
