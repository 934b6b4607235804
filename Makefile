# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  := models/gemma-3-270m-q4_k_m.gguf
# Portable CPU build of llama.cpp (GGML_NATIVE=ON would tie pip's cached wheel to this exact CPU).
# On an NVIDIA machine: make install CMAKE_ARGS="-DGGML_CUDA=on"
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export CMAKE_ARGS

.PHONY: install run test lint bench bench-gpu bench-gpu-prepare clean browser

install: $(STAMP) $(MODEL)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required ($(PYTHON) is older)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing (the first time compiles llama.cpp: ~3-4 minutes on 2 cores; pip caches it)"
	$(PY) -m pip install --quiet -e '.[dev,model]'
	@# instructor's jiter pin conflicts with current openai (see the dev extra); its calls work
	$(PY) -m pip install --quiet --no-deps 'instructor==1.17.0'
	touch $(STAMP)

$(MODEL): $(STAMP)
	$(PY) -m models_gpu.install_model

run: install
	$(PY) -m sop_llm.run

test: install browser
	$(PY) -m pytest

# The dashboard test drives headless Chromium (Debian's chromium + chromium-driver).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || echo "chromium/chromedriver missing: the dashboard browser test will be skipped"; }

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The gateway scenario's peer, LiteLLM, lives in a venv of its own: its pins are not ours.
# The version is the `bench-litellm` extra's in pyproject.toml (keep the two the same).
LITELLM_VENV := bench/.cache/litellm-venv
LITELLM      := litellm[proxy]==1.108.7

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	test -x $(LITELLM_VENV)/bin/litellm || { $(PYTHON) -m venv $(LITELLM_VENV) && \
		$(LITELLM_VENV)/bin/pip install --quiet '$(LITELLM)'; } || \
		echo "LiteLLM not installed: the gateway scenario runs without its peer"
	@echo "llama-server for the batching peer: built once from llama-cpp-python's sdist (~4.5 min on 2 cores), cached in bench/.cache"
	$(PY) -m bench.llama_server || echo "llama-server not built: the batching scenario skips its rows"
	LITELLM_BIN="$${LITELLM_BIN:-$(CURDIR)/$(LITELLM_VENV)/bin/litellm}" $(PY) -m bench.run

# The GPU benchmark: .gpu/ (git-ignored) carries everything to an offline CUDA machine, where
# `bash .gpu/run.sh` builds llama.cpp with CUDA and measures (bench/gpu/run.sh). Here: prepare it,
# then a CPU dry run of the same script (llama.cpp built without CUDA, cached in bench/.cache).
bench-gpu-prepare: install
	$(PY) -m bench.gpu prepare

bench-gpu: bench-gpu-prepare
	$(PY) -m bench.gpu dry-run

clean:
	rm -rf $(VENV) var .pytest_cache
