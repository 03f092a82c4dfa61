# One task runner: install lint typecheck test bench.
PY ?= .venv/bin/python

.PHONY: install lint typecheck test bench format

.venv/bin/python:
	python3 -m venv .venv

install: .venv/bin/python
	$(PY) -m pip install -q -e '.[test,bench]'

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest

bench:
	$(PY) bench/crypto.py
	$(PY) bench/ingest.py
	$(PY) bench/apply.py
	$(PY) bench/fullsync.py
