# Two commands on a fresh machine: `make train` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

train: $(VENV)/.installed
	$(BIN)/backprop train configs/digits.yaml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# Side by side with PyTorch, scikit-learn and JAX (installed into .venv on first use).
bench: $(VENV)/.installed
	$(BIN)/python -c "import torch, sklearn, jax" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==2.13.0" scikit-learn jax
	$(BIN)/python benchmarks/compare.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
