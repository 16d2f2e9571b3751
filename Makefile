# Baogong: two commands for a fresh machine.
#   make demo   run the whole pipeline on the synthetic demo city, live in the terminal
#   make test   create the venv, start local Kafka + PostgreSQL, run pytest, stop them
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv services-up services-down lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/baogong demo $(if $(DURATION),--duration $(DURATION),)

services-up: $(STAMP)
	$(BIN)/baogong services up

services-down: $(STAMP)
	$(BIN)/baogong services down

# Services are stopped whatever pytest's outcome; the exit code is pytest's.
test: $(STAMP)
	$(BIN)/baogong services up
	$(BIN)/pytest -ra $(PYTEST_ARGS); status=$$?; $(BIN)/baogong services down; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy baogong ingest streams alerts schema

bench: $(STAMP)
	$(BIN)/baogong services up
	status=0; $(BIN)/python -m tests.bench.run || status=1; $(BIN)/python -m tests.bench.scale || status=1; \
	$(BIN)/baogong services down; exit $$status

clean:
	rm -rf $(VENV) .baogong
