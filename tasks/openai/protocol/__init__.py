"""The OpenAI door's types: the request bodies it takes (requests.py), what each field does per
provider (fields.py), the shapes the OpenAPI schema shows (schema.py) and the SSE framing
(sse.py). No logic beyond checking a body."""
