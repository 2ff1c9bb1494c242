# Two commands matter (README Quickstart): `make setup` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A native llama.cpp build crashes on some CPUs (GPF in libggml-cpu): build it portable.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: setup venv system-deps elixir-src model demo vscode editor-e2e test lint

setup: system-deps venv elixir-src model demo

system-deps:
	bash scripts/install-system-deps.sh

venv:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q "llama-cpp-python[server]==0.3.36"
	# torch first and CPU-only (a local +cpu wheel where the machine has one), or the train extra pulls CUDA.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0+cpu" || \
	  $(BIN)/pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[llama,model,dev,corpus,train]"

elixir-src:
	bash scripts/fetch-elixir-source.sh

model:
	$(BIN)/potion models pull qwen2.5-coder-0.5b

# The main job, live: a real LSP session with `potion lsp` on the default model (inline completion,
# hover, GenServer scaffold on examples/counter.ex).
demo:
	$(BIN)/python -m lsp.demo

# The VS Code extension compiles (npm registry only).
vscode:
	cd editors/vscode && npm ci --no-audit --no-fund && npm run compile

# The real editors the tests drive, cached in ~/.cache/potion-editors: Neovim 0.11 (tests/editors run the
# plugin on it too) and what the real-VS-Code test needs (code-server, Node 24, Chromium, Playwright, the
# .vsix); tests/editors/test_vscode_e2e.py (marker editors_e2e) skips without them.
editor-e2e:
	-PY=$(CURDIR)/$(BIN)/python bash scripts/install-neovim.sh
	PY=$(CURDIR)/$(BIN)/python bash scripts/install-editor-e2e.sh

test:
	$(BIN)/python -m pytest -ra

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
