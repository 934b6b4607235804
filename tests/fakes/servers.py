"""Real HTTP servers on 127.0.0.1 that speak the remote providers' wire formats.

Each test scripts the answers (status, JSON body, headers, delay) and reads back what the
service actually sent. This is the one outbound seam the tests fake: the remote vendor.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # send these bytes instead of JSON


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: Any


class FakeServer:
    """Answers from a script of Replies (the last one repeats); records every request."""

    def __init__(self, default: Reply | None = None):
        self.script: list[Reply] = []
        self.default = default or Reply(404, {"error": "no reply scripted"})
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reply(self, *replies: Reply) -> "FakeServer":
        with self._lock:
            self.script.extend(replies)
        return self

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if len(self.script) > 1:
                return self.script.pop(0)
            return self.script[0] if self.script else self.default

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body are separate writes: without this, Nagle + delayed ACK add
            # ~40 ms to every answer.
            disable_nagle_algorithm = True

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = CaseInsensitiveDict(dict(self.headers))
                reply = server._next(Seen(self.command, self.path, headers, body))
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = do_PUT = _serve

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def openai_chat(
    text: str,
    *,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    finish_reason: str = "stop",
) -> dict:
    """A Chat Completions response body, as api.openai.com sends it."""
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_error(status: int, message: str, code: str | None = None) -> Reply:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
    return Reply(status, body)


def anthropic_message(
    text: str | None = None,
    *,
    tool_input: dict | None = None,
    model: str = "claude-test-model",
    stop_reason: str = "end_turn",
) -> dict:
    """A Messages API response body, as api.anthropic.com sends it."""
    content = []
    if text is not None:
        content.append({"type": "text", "text": text})
    if tool_input is not None:
        content.append(
            {"type": "tool_use", "id": "toolu_fake1", "name": "answer", "input": tool_input}
        )
        stop_reason = "tool_use"
    return {
        "id": "msg_fake123",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 7},
    }


def anthropic_error(status: int, kind: str, message: str, headers: dict | None = None) -> Reply:
    return Reply(
        status, {"type": "error", "error": {"type": kind, "message": message}}, headers or {}
    )
