PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_WORKERS ?= 2

.PHONY: install run test bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: install
	DEBUG=$${DEBUG:-true} $(BIN)/cashup serve

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_api.py $(BENCH_ARGS)

demo: install
	$(BIN)/python tools/demo.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) cashup.db .cashup
