"""`make bench --smoke`: every scenario once, small, so the benchmark keeps working.
Numbers from a smoke run mean nothing; only that every scenario ran and reported."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_every_benchmark_scenario_runs_and_reports():
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "REDIS_KEY_PREFIX": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    for heading in (
        "1. Engine overhead",
        "3. Structured output",
        "4. Model load",
        "5. Pipeline",
        "6. Scale",
        "7. Continuous batching",
    ):
        assert heading in out, heading
    assert "ordering correct: True" in out
    assert "| engine | service/direct tokens/s" in out
    assert "2. " in out  # the peer comparison ran, or says why it was skipped
