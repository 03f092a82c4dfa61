# One task runner: install lint typecheck test bench format; `make all` is the gate (what CI runs).
PY ?= .venv/bin/python

.PHONY: all install lint typecheck test bench format

all: lint typecheck test

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
	$(PY) bench/stream.py
	$(PY) bench/apply.py
	$(PY) bench/fullsync.py
	$(PY) bench/tenants.py
	$(PY) bench/hostile.py
	$(PY) bench/jitai.py
	$(PY) bench/feed.py
