"""The README's run command: everything starts, answers, and stops on SIGTERM."""

import os
import signal
import subprocess
import sys

import pytest
import redis
import requests

from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


def test_the_run_command_starts_an_embedded_redis_and_stops_everything(tmp_path):
    port, redis_port, key = free_port(), free_port(), "sk-run-test-key-5555"
    env = {
        **os.environ,
        "PORT": str(port),
        "EMBEDDED_REDIS_PORT": str(redis_port),
        "SOP_LLM_API_KEYS": key,
        "REMOTE_WORKERS": "1",
        "SOP_LLM_DATA_DIR": str(tmp_path),
        "REDIS_KEY_PREFIX": "",
    }
    env.pop("REDIS_URL")
    run = subprocess.Popen(
        [sys.executable, "-m", "sop_llm.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:

        def ready():
            try:
                return (
                    requests.get(
                        f"http://127.0.0.1:{port}/ready",
                        timeout=1,
                        headers={"Authorization": f"Bearer {key}"},
                    ).status_code
                    == 200
                )
            except requests.RequestException:
                return run.poll() is not None

        wait_for(ready, what="the service to be ready")
        assert run.poll() is None
        embedded = redis.Redis(port=redis_port, socket_timeout=1)
        assert embedded.ping() is True
        workers = wait_for(
            lambda: len(embedded.keys("worker:alive:*")) >= 3 or None,
            what="gpu, remote and webhooks workers",
        )
        assert workers
        children = subprocess.run(
            ["pgrep", "-P", str(run.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 5  # valkey, daphne, gpu, remote and webhooks workers
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        output = run.communicate(timeout=60)[0]
    assert run.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output and key in output
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_connect_timeout=1).ping()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
