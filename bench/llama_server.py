"""llama.cpp's own `llama-server`, built from the llama.cpp sources that the installed
llama-cpp-python vendors (its sdist), with the Makefile's CPU flags: the same kernels as ours.

    python -m bench.llama_server          # build (cached: a second run reuses the binary)
    python -m bench.llama_server --path   # print where the binary is, build nothing

The first build takes about 4.5 minutes on 2 cores; `make bench` runs it, the smoke run never does.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from bench.common import ROOT

CACHE = ROOT / "bench" / ".cache"
# The Makefile exports CMAKE_ARGS; this is its default, for a run outside make.
MAKEFILE_CMAKE_ARGS = (
    "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
)
SERVER_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
]


def version() -> str:
    from importlib.metadata import version as v

    return v("llama-cpp-python")


def binary(ver: str | None = None) -> Path:
    return CACHE / f"llama-cpp-python-{ver or version()}" / "llama-server"


def cmake_args() -> list[str]:
    return shlex.split(os.environ.get("CMAKE_ARGS") or MAKEFILE_CMAKE_ARGS) + SERVER_ARGS


def build(jobs: int = 2, log=print) -> Path:
    """The cached binary, building it first when it is not there."""
    ver = version()
    target = binary(ver)
    if target.exists():
        return target
    work = target.parent
    work.mkdir(parents=True, exist_ok=True)
    sdist = next(work.glob("llama_cpp_python-*.tar.gz"), None)
    if sdist is None:
        log(f"[llama-server] downloading the llama-cpp-python {ver} sdist")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-binary",
                "llama-cpp-python",
                "--no-deps",
                "-d",
                str(work),
                f"llama-cpp-python=={ver}",
            ],
            check=True,
        )
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    src = work / "src"
    if not (src / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        shutil.rmtree(src, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            top = tar.getnames()[0].split("/")[0]
            tar.extractall(work, filter="data")
        (work / top).rename(src)
    llama_cpp = src / "vendor" / "llama.cpp"
    build_dir = work / "build"
    args = cmake_args()
    log(f"[llama-server] cmake {' '.join(args)}")
    subprocess.run(["cmake", "-S", str(llama_cpp), "-B", str(build_dir), *args], check=True)
    log(f"[llama-server] building (about 4.5 minutes on 2 cores, -j{jobs})")
    subprocess.run(
        ["cmake", "--build", str(build_dir), "--target", "llama-server", f"-j{jobs}"],
        check=True,
    )
    built = next(p for p in build_dir.rglob("llama-server") if p.is_file() and os.access(p, 1))
    shutil.copy2(built, target)
    (work / "cmake-args.txt").write_text(" ".join(args) + "\n")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", action="store_true", help="print the binary's path only")
    parser.add_argument("-j", type=int, default=2)
    args = parser.parse_args(argv)
    if args.path:
        print(binary())
        return 0 if binary().exists() else 1
    print(build(args.j))
    return 0


if __name__ == "__main__":
    sys.exit(main())
