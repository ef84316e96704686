# Every target creates and fills .venv when needed; the pins in constraints.txt apply to every install.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: install run serve worker analyze test lint fmt bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The service: gunicorn on $(HOST):$(PORT) (HOST and PORT from the environment).
run: $(STAMP)
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m service serve

serve: run

## A job-queue worker (RQ): needs REDIS_URL, the Redis the API uses. Run one per core, on any machine.
worker: $(STAMP)
	@test -n "$$REDIS_URL" || { echo "make worker: set REDIS_URL (e.g. redis://127.0.0.1:6379/0)"; exit 2; }
	$(BIN)/python -m service worker

## One analysis from the command line, no server: make analyze SPEC=examples/specs/lecture_identity_depth100.json
SPEC ?= examples/specs/lecture_identity_depth100.json
analyze: $(STAMP)
	$(BIN)/python -m service analyze $(SPEC)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

## Re-pin constraints.txt from what .venv holds now.
lock: $(STAMP)
	{ echo '# Pinned versions the install uses (pip install -c constraints.txt).'; \
	  echo '# torch 2.13.0 is the CPU build on these machines. Regenerate with: make lock'; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
