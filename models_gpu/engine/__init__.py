"""The inference library: a GGUF model loaded with llama.cpp and run, alone or batched.

It knows nothing of Django, Redis keys or the GPU ops around it (the guard, the catalog, the
views): the app layer (`models_gpu.config`) builds its `EngineConfig` from the settings and hands
it in. An import-linter contract in pyproject.toml keeps it so.
"""
