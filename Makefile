# The two quick-start commands: `make demo` and `make test`.
# Both install what they need (Debian packages as root, Python into .venv).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.posnet-installed

.PHONY: demo test lint typecheck unit lab bench bench-quick golden deps clean

deps: $(STAMP)

$(STAMP): pyproject.toml scripts/install-deps.sh
	bash scripts/install-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: deps
	$(BIN)/posnet render examples/demo-fleet -o build/demo-fleet
	@echo
	@echo "Rendered into build/demo-fleet. Start with:"
	@echo "  less build/demo-fleet/sites/gent-01/HANDOVER.md"
	@echo "  .venv/bin/posnet plan examples/demo-fleet --site gent-01"
	@echo "  .venv/bin/posnet render examples/demo-fleet -o build/demo-fleet --check"

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd playbooks && ../$(BIN)/ansible-lint --offline -q --profile production .

test: deps lint
	$(BIN)/pytest -q -n 2 -m 'not lab'
	$(BIN)/pytest -q -m lab -n 3 --dist loadfile --durations=10

golden: deps
	$(BIN)/pytest -q tests/test_golden.py --update-golden

# Side by side with Aerleon (installed into a cache venv on first use) and Ansible.
bench: deps
	$(BIN)/python benchmarks/fleet_bench.py --stores 1000 --stores 10000

bench-quick: deps
	$(BIN)/python benchmarks/fleet_bench.py --quick

clean:
	rm -rf build .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis
