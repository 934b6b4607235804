"""The GPU benchmark's own parts that run anywhere: its table and its scripts' syntax. (Its CPU
dry run, `make bench-gpu`, builds llama.cpp: minutes, not a test.)"""

import os
import subprocess
import sys

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


def test_a_dry_run_forgets_earlier_measurements_but_keeps_its_build_environment_and_models(
    tmp_path,
):
    from bench.gpu.__main__ import fresh

    work, out = tmp_path / "work", tmp_path / "out"
    kept = ["env.done", "r270.gguf", "build/bin/llama-server", "proj/manage.py"]
    gone = ["done.270m.cpp", "done.270m.server", "rows-270m.jsonl"]
    for name in [*kept, *gone]:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("x")
    out.mkdir()
    (out / "rows-4b.jsonl").write_text("{}")
    (out / "run.log").write_text("[0s] env ready")
    fresh(work, out)
    assert sorted(p.name for p in work.iterdir()) == ["build", "env.done", "proj", "r270.gguf"]
    assert (work / "build" / "bin" / "llama-server").exists()
    assert list(out.iterdir()) == []


def _kit(tmp_path, project_version: str):
    """A kit folder as prepare.sh makes it (the scripts run.sh needs, a project archive) and a
    work folder whose environment and model are already there."""
    kit, work, out = tmp_path / "kit", tmp_path / "work", tmp_path / "out"
    for d in (kit, work, tmp_path / "proj"):
        d.mkdir(exist_ok=True)
    for name in ("run.sh", "table.py"):
        (kit / name).write_text((ROOT / "bench" / "gpu" / name).read_text())
    (tmp_path / "proj" / "VERSION").write_text(project_version)
    archive = ["tar", "cJf", str(kit / "proj.tar.xz"), "-C", str(tmp_path / "proj"), "."]
    subprocess.run(archive, check=True)
    if not (kit / "llama.cpp.tar.xz").exists():
        subprocess.run(["tar", "cJf", str(kit / "llama.cpp.tar.xz"), "-T", "/dev/null"], check=True)
    (work / "env.done").touch()
    (work / "r270.gguf").touch()
    return kit, work, out


def _run_kit(kit, work, out, stages: str, path: str = os.environ["PATH"]):
    env = {
        "PATH": path,
        "PYTHON": sys.executable,
        "W": str(work),
        "OUT": str(out),
        "STAGES": stages,
        "NO4B": "1",
        "CUDA": "OFF",
        "DEADLINE": "600",
    }
    return subprocess.run(["bash", str(kit / "run.sh")], env=env, capture_output=True, text=True)


def test_a_rerun_unpacks_the_project_again_when_the_kit_carries_a_newer_one(tmp_path):
    kit, work, out = _kit(tmp_path, "one")
    _run_kit(kit, work, out, " ")
    assert (work / "proj" / "VERSION").read_text() == "one"
    (work / "proj" / "stale").touch()
    _kit(tmp_path, "two")
    result = _run_kit(kit, work, out, " ")
    assert (work / "proj" / "VERSION").read_text() == "two", result.stdout
    assert not (work / "proj" / "stale").exists()


def _recording_cmake(tmp_path) -> str:
    """cmake as a recording stand-in: building llama.cpp takes many minutes (the dry run,
    `make bench-gpu`, does it for real). Returns a PATH that finds it first."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cmake").write_text(
        '#!/usr/bin/env bash\necho "$*" >> "$W/cmake-calls"\n'
        'while [ $# -gt 0 ]; do [ "$1" = -B ] && mkdir -p "$2" && touch "$2/build.ninja"\n'
        "shift; done\n"
    )
    (fake / "cmake").chmod(0o755)
    return f"{fake}:{os.environ['PATH']}"


def test_the_build_configures_once_and_asks_only_for_the_targets_the_stages_use(tmp_path):
    kit, work, out = _kit(tmp_path, "one")
    path = _recording_cmake(tmp_path)
    _run_kit(kit, work, out, "cpp270 ours270", path=path)
    _run_kit(kit, work, out, "server270 serverbs270", path=path)
    calls = (work / "cmake-calls").read_text().splitlines()
    assert sum(" -S " in f" {c}" for c in calls) == 1
    builds = [c.split("--target ")[1].split(" -j")[0] for c in calls if c.startswith("--build")]
    assert builds == ["llama llama-batched-bench", "llama llama-server"]


def test_other_llama_cpp_sources_in_the_kit_mean_a_new_build(tmp_path):
    kit, work, out = _kit(tmp_path, "one")
    path = _recording_cmake(tmp_path)
    _run_kit(kit, work, out, "cpp270", path=path)
    (tmp_path / "newer").write_text("a newer llama.cpp")
    subprocess.run(["tar", "cJf", str(kit / "llama.cpp.tar.xz"), "-C", str(tmp_path), "newer"])
    _run_kit(kit, work, out, "cpp270", path=path)
    calls = (work / "cmake-calls").read_text().splitlines()
    assert sum(" -S " in f" {c}" for c in calls) == 2
    assert (work / "src" / "newer").exists()
