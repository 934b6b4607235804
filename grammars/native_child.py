"""The child process that runs llama.cpp's grammar parser for grammars/native.py.

Reads {"kind", "text", "vocab"} as JSON on stdin and writes {"gbnf"} or {"error"} on stdout.
It may crash or hang on a hostile grammar: that is why it is a process of its own."""

import ctypes
import json
import os
import sys
import tempfile

_log: list[str] = []


def _keep(level, text, user_data) -> None:
    _log.append(text.decode(errors="replace"))


def _to_gbnf(kind: str, text: str) -> str:
    if kind != "json_schema":
        return text
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(text)


def _vocab(llama_cpp, path: str | None):
    """The model's vocabulary (token names in a grammar resolve against it), or none at all."""
    if not path:
        return None, None
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    if not model:
        raise ValueError(f"cannot read the vocabulary of {path}")
    return model, llama_cpp.llama_model_get_vocab(model)


def check(kind: str, text: str, vocab_path: str | None) -> dict:
    import llama_cpp

    callback = llama_cpp.llama_log_callback(_keep)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        gbnf = _to_gbnf(kind, text)
    except Exception as exc:  # the converter raises bare AssertionError/ValueError/KeyError
        return {"error": f"llama.cpp's JSON-schema converter refused it: {exc!r}"}
    model, vocab = _vocab(llama_cpp, vocab_path)
    _log.clear()
    with _stderr_to(_log):  # the parser prints its reason with fprintf(stderr), not the log
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not sampler:
        return {"error": _reason()}
    llama_cpp.llama_sampler_free(sampler)
    return {"gbnf": gbnf}


class _stderr_to:
    """Collect what C code writes to file descriptor 2 meanwhile."""

    def __init__(self, sink: list[str]):
        self.sink = sink

    def __enter__(self):
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        self.file.seek(0)
        self.sink.append(self.file.read().decode(errors="replace"))


def _reason() -> str:
    """llama.cpp's own words ("parse: error parsing grammar: expecting ')' at ...")."""
    lines = [line.strip() for line in "".join(_log).splitlines() if line.strip()]
    named = [line for line in lines if "error" in line or "unsupported" in line]
    reason = (named or lines or ["the grammar does not parse"])[0]
    return reason.removeprefix("parse: ")[:500]


if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(check(request["kind"], request["text"], request.get("vocab")), sys.stdout)
