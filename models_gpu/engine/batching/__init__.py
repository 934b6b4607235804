"""Continuous batching for local GGUF models: many sequences per llama_decode (issue 17).

    engine = BatchEngine(llama, slots=4)
    result = engine.generate(request, prompt_tokens=..., stops=..., model_name=...)

`generate` blocks its caller and is safe from many threads at once; one decode-loop thread runs
the batch. See engine.py for the KV-cache layout and grammar.py for structured output.
"""

from .engine import BatchEngine
from .grammar import batch_constraint

__all__ = ["BatchEngine", "batch_constraint"]
