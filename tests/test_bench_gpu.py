"""The GPU benchmark's own parts that run anywhere: its table and its scripts' syntax. (Its CPU
dry run, `make bench-gpu`, builds llama.cpp: minutes, not a test.)"""

import subprocess

from bench.gpu.table import markdown
from tests.conftest import ROOT

ROWS = [
    {"what": "cpp_batched_bench", "model": "270m", "clients": 1, "tok_s": 510.0},
    {"what": "cpp_batched_bench", "model": "270m", "clients": 32, "tok_s": 7994.2},
    {
        "what": "ours_fa1",
        "model": "270m",
        "clients": 32,
        "temp": 0.8,
        "tok_s": 2116.0,
        "python_ms_step": 0.412,
    },
    {
        "what": "service",
        "model": "270m",
        "clients": 1,
        "temp": 0.0,
        "tok_s": 300.0,
        "mean_tokens": 96.0,
    },
    {"what": "service", "model": "270m", "error": "RuntimeError('load never finished')"},
]


def test_the_gpu_table_has_a_row_per_stage_and_temperature_and_a_column_per_level():
    lines = markdown(ROWS).splitlines()
    assert lines[0] == "| model shape | what | temperature | 1 seq | 32 seq |"
    row = lambda what: next(line for line in lines if what in line)  # noqa: E731
    assert "| 510 | 7,994 |" in row("C++ ceiling")
    assert "| 0.8 |  | 2,116 (0.41 ms py/step) |" in row("BatchEngine")
    assert "300 (96 tok/answer)" in row("whole service")


def test_a_stage_that_failed_is_listed_under_the_table_not_dropped():
    assert "- service (270m): RuntimeError('load never finished')" in markdown(ROWS)


def test_the_gpu_scripts_are_valid_bash():
    for script in ("prepare.sh", "run.sh"):
        result = subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu" / script)])
        assert result.returncode == 0, script
