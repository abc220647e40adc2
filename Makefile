# deskhand — one Makefile.  `make demo` and `make test` each set up what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := .deskhand/demo.db

.PHONY: help setup docker image demo test test-fast lint bench clean

help:
	@echo "make demo   run the demo task in a sandbox (sets everything up first)"
	@echo "make test   run the whole test suite (sets everything up first)"
	@echo "make lint   ruff + mypy (strict on the packages, the tests and the benchmarks)"
	@echo "make bench  benchmarks, one JSON line per figure"

setup:
	@scripts/bootstrap.sh

# A Docker engine and the sandbox image (built only when its context changed).
docker: setup
	@scripts/ensure_docker.sh

image: docker
	@$(BIN)/deskhand sandbox build

demo: setup
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image; fi
	@mkdir -p .deskhand
	$(BIN)/deskhand run --script examples/terminal-note.yaml --db $(DEMO_DB)
	@echo
	@echo "The audit log of this run:  $(BIN)/deskhand sessions --db $(DEMO_DB)"
	@echo "Step through it:            $(BIN)/deskhand replay --db $(DEMO_DB) <SESSION>"

test: setup
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image; fi
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not docker and not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases tests benchmarks

bench: setup
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image; fi
	$(BIN)/python -m benchmarks

clean:
	rm -rf .deskhand .pytest_cache .mypy_cache .ruff_cache build *.egg-info
