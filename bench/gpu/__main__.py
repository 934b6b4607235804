"""`make bench-gpu`: prepare the offline folder, then a CPU dry run of it (see __init__)."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / "bench" / ".cache"
SAVED_NAME = "bench/results/gpu.md"
# A CPU machine: no CUDA, no offload, tiny sizes, every stage once (run.sh's own defaults are
# the GPU run's: 1/8/32/64 sequences of 128 tokens, 270M and 4B shapes).
DRY = {
    "CUDA": "OFF",
    "NGL": "0",
    "THREADS": "2",
    "NO4B": "1",
    "LEVELS": "1,2",
    "TOKENS": "16",
    "DEADLINE": "3000",
    "JOBS": "2",  # a shared 2-core machine: the build must not starve everyone else
    "NICE": "10",
    "STAGES": "cpp270 server270 serverbs270 ours270 proto270 service270",
}


def prepare() -> int:
    env = {**os.environ, "PY": os.environ.get("PY", sys.executable)}
    return subprocess.call(["bash", str(HERE / "prepare.sh")], cwd=ROOT, env=env)


def dry_run() -> int:
    """run.sh from .gpu/ with this venv's Python; the llama.cpp build and the models are cached
    in bench/.cache, the measurements are made again each time."""
    fresh(CACHE / "gpu-work", CACHE / "gpu-dry")
    env = {
        **os.environ,
        **DRY,
        "PYTHON": sys.executable,
        "W": str(CACHE / "gpu-work"),
        "OUT": str(CACHE / "gpu-dry"),
    }
    return subprocess.call(["bash", str(ROOT / ".gpu" / "run.sh")], cwd=ROOT, env=env)


def fresh(work: Path, out: Path) -> None:
    """Forget an earlier dry run's measurements (run.sh skips a stage whose marker is there and
    tabulates every rows file in OUT; its log is this run's), not its build, environment or
    models."""
    for old in [*work.glob("done.*"), *work.glob("rows-*.jsonl"), *out.glob("rows-*.jsonl")]:
        old.unlink()
    (out / "run.log").unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=["prepare", "dry-run", "table"])
    parser.add_argument("rows", nargs="*", help="table: measure.py's JSON lines files")
    parser.add_argument("--save", action="store_true", help=f"table: also into {SAVED_NAME}")
    args = parser.parse_args(argv)
    if args.step == "table":
        from bench.gpu.table import SAVED, markdown, read

        table = markdown(read(args.rows))
        sys.stdout.write(table)
        if args.save:  # docs/BENCHMARKS.md shows it from the next `make bench` on
            SAVED.write_text(table)
        return 0
    return prepare() if args.step == "prepare" else dry_run()


if __name__ == "__main__":
    sys.exit(main())
