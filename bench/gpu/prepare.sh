#!/usr/bin/env bash
# Prepare, on a machine with the package registries, a folder that measures the project on an
# offline CUDA machine (Python 3.12, cmake, ninja, nvcc there; nothing fetched there).
#
#   make bench-gpu-prepare  (or: python -m bench.gpu prepare; after `make install`)
#   -> .gpu/ (git-ignored, ~45 MB): copy or carry it to the GPU machine, then there:
#      `bash .gpu/run.sh` (OUT=<results dir>; STAGES, DEADLINE: see run.sh)
#   Again: only the scripts and the project archive are redone, unless PYVER, llama-cpp-python or
#   the dependency pins changed (.gpu/stamp).
#
# What goes in: cp312 manylinux wheels of the project's runtime dependencies that a CUDA/PyTorch
# image usually lacks, the project itself (`git archive HEAD`), the llama.cpp sources vendored by
# the installed llama-cpp-python (its sdist, stripped of docs, models and other backends), that
# package's pure-Python part (it loads the CUDA build through LLAMA_CPP_LIB_PATH), the
# development model's tokenizer (random-weight models of Gemma 3 shapes are made there), and the
# scripts. PYVER=3.12 by default: set it to the GPU machine's Python.
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$KIT" rev-parse --show-toplevel)
cd "$ROOT"
PY=${PY:-.venv/bin/python}
PYVER=${PYVER:-3.12}
G=$ROOT/.gpu
mkdir -p "$G"
echo "$PYVER" > "$G/pyver"
rm -f "$G"/*.py && cp "$KIT"/run.sh "$KIT"/[!_]*.py "$G/"   # the scripts: measure.py's stages too

# 1. wheels: the runtime closure of the project, minus what a CUDA/PyTorch image ships
"$PY" - "$G/need.txt" <<'EOF'
import importlib.metadata as md, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
image = set("""anyio attrs certifi charset-normalizer click filelock fsspec h11 httpcore httpx idna
jinja2 markupsafe msgpack numpy nvidia-ml-py packaging pyyaml requests six tqdm typing-extensions
urllib3 python-dateutil setuptools pip wheel""".split())
seen, stack = set(), ["sop-llm"]
while stack:
    try:
        dist = md.distribution(stack.pop())
    except md.PackageNotFoundError:
        continue
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        name = norm(re.split(r"[ ;<>=!~\[(]", req)[0])
        if name not in seen:
            seen.add(name)
            stack.append(name)
pins = []
for name in sorted(seen - image - {"llama-cpp-python"}):
    try:
        pins.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
EOF
ver=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
# Wheels, llama.cpp and the tokenizer are made again only when what they come from changed.
stamp="python $PYVER, llama-cpp-python $ver, $(md5sum < "$G/need.txt" | cut -c1-32)"
if [ "$(cat "$G/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "reusing .gpu's wheels, llama.cpp sources and tokenizer ($stamp)"
else
rm -rf "$G/stamp" "$G/wheels" "$G/llama_cpp_py" && mkdir -p "$G/wheels"
plat=()
for p in manylinux1_x86_64 manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_27_x86_64 manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 \
         manylinux_2_35_x86_64; do plat+=(--platform "$p"); done
while read -r spec; do
  [ -n "$spec" ] || continue
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp "${plat[@]}" -d "$G/wheels" "$spec" 2>/dev/null \
    || echo "no wheel for $spec (the GPU machine must have it)"
done < "$G/need.txt"

# 2. llama.cpp, as the installed llama-cpp-python vendors it
tmp=$(mktemp -d)
"$PY" -m pip download -q --no-deps --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$ver"
tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
src=$(ls -d "$tmp"/llama_cpp_python-*/vendor/llama.cpp)
excl=()
for d in docs models tests examples benches media gguf-py .git .github; do excl+=(--exclude="./$d"); done
for b in vulkan metal sycl cann opencl webgpu hexagon openvino zdnn zendnn virtgpu et; do
  excl+=(--exclude="./ggml/src/ggml-$b"); done
(cd "$src" && tar "${excl[@]}" -cJf "$G/llama.cpp.tar.xz" .)
rm -rf "$tmp"
mkdir -p "$G/llama_cpp_py"
site=$("$PY" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')
(cd "$(dirname "$site")" && tar --exclude='llama_cpp/lib' --exclude='__pycache__' \
  --exclude='llama_cpp/server' -cf - llama_cpp) | tar xf - -C "$G/llama_cpp_py"

# 3. the development model's tokenizer, for random-weight models of Gemma 3 shapes
"$PY" - "$G/tok.json.xz" <<'EOF'
import json, lzma, sys
from gguf import GGUFReader
f = GGUFReader("models/gemma-3-270m-q4_k_m.gguf").fields
tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode() for i in f["tokenizer.ggml.tokens"].data]
scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data]
types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
with lzma.open(sys.argv[1], "wt") as out:
    json.dump({"tokens": tokens, "scores": scores, "types": types}, out)
EOF
echo "$stamp" > "$G/stamp"
fi

# 4. the project, as committed (what is not committed does not travel); run.sh unpacks it again
# when it changed
git archive --format=tar HEAD | xz -6 > "$G/proj.tar.xz.new"
if cmp -s "$G/proj.tar.xz.new" "$G/proj.tar.xz"; then rm "$G/proj.tar.xz.new"; else mv "$G/proj.tar.xz.new" "$G/proj.tar.xz"; fi
du -sh "$G"
# What travels to a GPU machine with the checkout: tracked and untracked-not-ignored files.
travel=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
kit=$(du -sb "$G" | cut -f1)
echo "checkout files that travel: $((travel / 1048576)) MiB; .gpu: $((kit / 1048576)) MiB"
[ $((travel + kit)) -lt $((60 * 1048576)) ] || echo "WARNING: over ~60 MiB together: git-ignore build caches (e.g. bench/.cache) first"
