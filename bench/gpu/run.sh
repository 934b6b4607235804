#!/usr/bin/env bash
# On the CUDA machine (made by prepare.sh): build llama.cpp with CUDA (CUDA_ARCH, default 90 =
# Hopper; ~4 min on 16 cores; only the targets STAGES use), make random-weight Gemma 3 models,
# then the engine-level and service-level measurements. Idempotent: run it again on the same
# machine (same W) and it skips what is done, rebuilds nothing built, unpacks a newer project.
# STAGES picks what to run; DEADLINE (s) stops starting new measurements; results (JSON lines,
# logs, table.md) go to OUT. A dry run on a CPU machine (`python -m bench.gpu dry-run`):
# CUDA=OFF NGL=0 THREADS=2 NO4B=1 LEVELS=1,2 TOKENS=16 JOBS=2 NICE=10 PYTHON=<the project's venv
# python>, STAGES="cpp270 server270 serverbs270 ours270 proto270 service270".
set -u
K=$(cd "$(dirname "$0")" && pwd)
W=$(mkdir -p "${W:-/tmp/kit}" && cd "${W:-/tmp/kit}" && pwd)
PYTHON=${PYTHON:-python3}
python3() { "$PYTHON" "$@"; }
NGL=${NGL:-99}
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$W" "$OUT"
T0=$(date +%s)
DEADLINE=${DEADLINE:-520}
STAGES=${STAGES:-cpp270 server270 serverbs270 ours270 proto270 service270 cpp4b server4b serverbs4b ours4b proto4b service4b}
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/run.log"; }

export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || export PATH=$(dirname "$(ls -d /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1)"):$PATH
if [ ! -f "$W/env.done" ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  { python3 --version; which nvcc; nvcc --version | tail -2; nproc; free -g | head -2; } > "$OUT/env.txt" 2>&1
  rm -rf $W/site && mkdir -p $W/site
  ver=$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')
  if [ "$ver" != "$(cat "$K/pyver")" ]; then
    log "the wheels are for Python $(cat "$K/pyver"), not $ver: using this python's own packages (a dry run in the project's venv)"
  else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target $W/site "$K"/wheels/*.whl > "$OUT/pip.log" 2>&1 || {
      log "bulk pip failed; one by one"; tail -3 "$OUT/pip.log"
      for w in "$K"/wheels/*.whl; do
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
          --target $W/site "$w" >> "$OUT/pip.log" 2>&1 || log "wheel failed: $(basename "$w")"
      done; }
  fi
  cp -r "$K/llama_cpp_py/llama_cpp" $W/site/
  touch "$W/env.done"
  log "env ready"
fi
# llama.cpp's sources: again, with a new build, only when the kit carries other ones (a work
# folder from before this check keeps its build).
[ -d "$W/src" ] && [ ! -f "$W/llama.cpp.tar.xz" ] && cp "$K/llama.cpp.tar.xz" "$W/llama.cpp.tar.xz"
if ! cmp -s "$K/llama.cpp.tar.xz" "$W/llama.cpp.tar.xz"; then
  rm -rf "$W/src" "$W/build" && mkdir -p "$W/src" && tar xJf "$K/llama.cpp.tar.xz" -C "$W/src"
  cp "$K/llama.cpp.tar.xz" "$W/llama.cpp.tar.xz"
  log "llama.cpp unpacked"
fi
# The project as this kit carries it: again whenever prepare.sh made a new archive (the build
# and the models are kept).
if ! cmp -s "$K/proj.tar.xz" "$W/proj.tar.xz"; then
  rm -rf "$W/proj" && mkdir -p "$W/proj" && tar xJf "$K/proj.tar.xz" -C "$W/proj"
  cp "$K/proj.tar.xz" "$W/proj.tar.xz"
  log "project unpacked"
fi
export PYTHONPATH=$W/site:$W/proj

# Only the targets the chosen stages use; ninja keeps what an earlier run built (SKIP_BUILD: use
# $W/build/bin as is). JOBS and NICE: a dry run on a shared machine builds with -j2 at nice 10.
targets=llama
case " $STAGES " in *" cpp"*) targets="$targets llama-batched-bench" ;; esac
case " $STAGES " in *" server"*) targets="$targets llama-server" ;; esac
if [ -z "${SKIP_BUILD:-}" ]; then
  if [ ! -f "$W/build/build.ninja" ]; then
    log "cmake"
    cmake -S "$W/src" -B "$W/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
      $( [ "${CUDA:-ON}" = ON ] && echo "-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90}" ) -DGGML_NATIVE=ON -DLLAMA_BUILD_SERVER=ON \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
      > "$OUT/cmake.log" 2>&1 || { log "cmake failed"; tail -30 "$OUT/cmake.log"; rm -f "$W/build/build.ninja"; exit 1; }
  fi
  log "build $targets"
  timeout $(( $(left) - 60 > 60 ? $(left) - 60 : 60 )) ${NICE:+nice -n "$NICE"} \
    cmake --build "$W/build" --target $targets -j"${JOBS:-$(nproc)}" > "$OUT/build.log" 2>&1 \
    || { tail -3 "$OUT/build.log"; log "build not finished"; exit 3; }
  tail -1 "$OUT/build.log"
  log "build done"
fi
B=$W/build/bin
export LLAMA_CPP_LIB_PATH=$B LD_LIBRARY_PATH=$B:${LD_LIBRARY_PATH:-}

M270=$W/r270.gguf   # the service stage links it into proj/models under its catalog name
M4B=$W/r4b.gguf
[ -f "$M270" ] || python3 "$K/mkmodel.py" "$M270" 270m
[ -n "${NO4B:-}" ] || [ -f "$M4B" ] || python3 "$K/mkmodel.py" "$M4B" 4b
log "models ready"

run() {  # run TAG MODEL WHAT [extra args]
  local tag=$1 model=$2 what=$3; shift 3
  [ -f "$W/done.$tag.$what" ] && return
  if [ "$(left)" -lt 40 ]; then log "skip $tag $what (deadline)"; return; fi
  log "bench $tag $what"
  timeout $(( $(left) - 10 )) "$PYTHON" "$K/measure.py" "$model" --tag "$tag" --bin "$B" \
    --what "$what" --threads ${THREADS:-8} --ngl $NGL "$@" ${LEVELS:+--levels $LEVELS} \
    ${TOKENS:+--tokens $TOKENS} --proj "$W/proj" 2>>"$OUT/bench-stderr.log" | grep -v '^#' \
    && touch "$W/done.$tag.$what"
  cp "$W/rows-$tag.jsonl" "$OUT/" 2>/dev/null
}
for stage in $STAGES; do
  case $stage in
    cpp270) run 270m "$M270" cpp --levels 1,8,32,64 --out "$W" ;;
    server270) run 270m "$M270" server --levels 1,8,32,64 --out "$W" ;;
    serverbs270) run 270m "$M270" server_bs --levels 1,8,32,64 --out "$W" ;;
    ours270) run 270m "$M270" ours --levels 1,8,32,64 --out "$W" ;;
    ours270nofa) run 270m "$M270" ours_nofa --levels 1,8,32 --out "$W" ;;
    proto270) run 270m "$M270" proto --levels 1,8,32,64 --out "$W" ;;
    service270) run 270m "$M270" service --levels 1,8,32 --out "$W" ;;
    cpp4b) run 4b "$M4B" cpp --levels 1,8,32 --out "$W" ;;
    server4b) run 4b "$M4B" server --levels 1,8,32 --out "$W" ;;
    serverbs4b) run 4b "$M4B" server_bs --levels 1,8,32 --out "$W" ;;
    ours4b) run 4b "$M4B" ours --levels 1,8,32 --out "$W" ;;
    proto4b) run 4b "$M4B" proto --levels 1,8,32 --out "$W" ;;
    service4b) run 4b "$M4B" service --levels 1,8,32 --out "$W" ;;
  esac
done
"$PYTHON" "$K/table.py" "$OUT"/rows-*.jsonl > "$OUT/table.md" && cat "$OUT/table.md"
log "end"
