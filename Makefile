# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; GPU users install their own torch first (pyproject asks only torch>=2.3).
TORCH ?= torch==2.13.0

.PHONY: demo test test-all bench clean

$(BIN)/inrkit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $@

demo: $(BIN)/inrkit
	$(BIN)/inrkit fit data/astronaut.png --model siren --steps 300 --out runs/demo
	$(BIN)/inrkit render runs/demo --scale 2

test: $(BIN)/inrkit
	$(BIN)/ruff check inrkit tests benchmarks
	$(BIN)/python -m pytest -q

test-all: $(BIN)/inrkit
	$(BIN)/python -m pytest -q -m "not gpu"

clean:
	rm -rf $(VENV) runs .pytest_cache
