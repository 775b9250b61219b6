# The two commands a newcomer needs (see README.md):
#   make demo   sets everything up and runs the main job on the embedded default (SQLite)
#   make test   sets everything up (PostgreSQL included) and runs lint, type checks and the tests
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export UV_LINK_MODE ?= copy

.PHONY: demo test setup system-deps lint typecheck pytest bench clean

demo: setup
	$(UV) run socialcredit demo --fresh

# the tests also run the batch plan on Apache Spark (local mode): the optional `spark` extra
test: SYNC_ARGS = --extra spark
test: setup system-deps lint typecheck pytest

setup:
	@bash scripts/bootstrap.sh
	$(UV) sync --frozen $(SYNC_ARGS)

system-deps:
	@bash scripts/system-deps.sh

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck:
	$(UV) run mypy

pytest:
	$(UV) run pytest -q

bench: setup system-deps
	$(UV) run python benchmarks/ingest.py --rows 1000000

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache socialcredit-demo.db*
