"""`make bench --smoke`: every scenario once, small, so the benchmark keeps working.
Numbers from a smoke run mean nothing; only that every scenario ran and reported."""

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_every_benchmark_scenario_runs_and_reports():
    # Its own process group: however this test ends, the web and workers it started go too.
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-write"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "REDIS_KEY_PREFIX": ""},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=880)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    for heading in (
        "1. Engine overhead",
        "3. Structured output",
        "4. Model load",
        "5. Pipeline",
        "6. Scale",
        "7. Continuous batching",
        "8. Batch API",
        "The service at GPU token rates",
        "Decode loop cost",
        "The remote path vs a stateless proxy",
    ):
        assert heading in out, heading
    assert "ordering correct: True" in out
    assert "| engine | service/direct tokens/s" in out
    assert "2. " in out  # the peer comparison ran, or says why it was skipped
