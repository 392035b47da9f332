# The README's two commands:  `make run` (install + main job)  and  `make test` (install + tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= reports/default
# CPU build of torch on machines without an NVIDIA GPU; pyproject.toml keeps torch a range so
# GPU machines get their CUDA build.
TORCH_CPU ?= torch==2.13.0

.PHONY: install run lint test test-slow test-all bench clean docs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then echo "GPU found: torch from pyproject's range"; \
	 else $(BIN)/python -m pip install -q $(TORCH_CPU); fi
	$(BIN)/python -m pip install -q -e '.[test,lint,lightning,docs]'
	touch $@

run: install
	$(BIN)/python -m paper_checks --out $(OUT)

# ruff (the rule set in pyproject.toml), mypy on the four packages, and the import-linter's layer contracts
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install
	$(BIN)/python -m pytest -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -m slow

test-all: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks.bench_theory
	$(BIN)/python -m benchmarks.bench_measurement
	$(BIN)/python -m benchmarks.bench_simulate
	$(BIN)/python -m benchmarks.bench_sweep
	$(BIN)/python -m benchmarks.bench_ladder
	$(BIN)/python -m benchmarks.bench_many_classes
	$(BIN)/python -m benchmarks.bench_layers
	$(BIN)/python -m benchmarks.bench_schema

# the documentation (docs/, mkdocs.yml): the `docs` extra, then a strict build (warnings are errors) into site/
docs: install
	$(BIN)/python -m pip install -q -e '.[docs]'
	$(BIN)/python -m mkdocs build --strict -d site

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
