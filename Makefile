# One-command set-up: every target creates .venv and installs requirements.txt when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
BQ_STAMP := .venv-bq/.installed-$(shell sha1sum requirements-bq.txt | cut -c1-12)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install emulators run emulate test bench chaos lint schemas bootstrap iam-check clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

# The `onboarding` console script (pyproject.toml [project.scripts]): cli/ installed in place, no dependency resolved here.
$(BIN)/onboarding: pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) $(BIN)/onboarding ## create .venv, install pinned dependencies and the `onboarding` CLI

$(BQ_STAMP): requirements-bq.txt $(STAMP)
	$(BIN)/python -m scripts.emulators install

emulators: $(BQ_STAMP) ## .venv-bq with the pinned BigQuery emulator (Firestore and Pub/Sub come with gcloud)

run: $(STAMP) ## serve every function on http://127.0.0.1:$${PORT:-8080} with embedded backends
	$(BIN)/python -m functions.local

emulate: $(STAMP) $(BQ_STAMP) ## the deployed topology locally: emulators, topics, push subscriptions, one process per function
	$(BIN)/python -m scripts.emulate

bootstrap: $(STAMP) ## create the central dataset and tables (idempotent)
	$(BIN)/python -m shared.bootstrap

test: $(STAMP) $(BQ_STAMP) ## the whole suite: unit, contract (embedded and emulated GCP), functional, end to end
	$(BIN)/python -m pytest

bench: $(STAMP) ## embedded and Google Cloud profile figures, import times (BENCH_ARGS="--gcp-time-scale 1": real time)
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

chaos: $(STAMP) ## 200 tenants onboarded concurrently over HTTP with faults injected; prints every invariant
	$(BIN)/python -m scripts.chaos

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

iam-check: $(STAMP) ## each function's IAM permissions in use against what deploy.sh --dry-run grants it; fails on missing or unused
	$(BIN)/python -m scripts.iam_check

schemas: $(STAMP) ## regenerate schemas/json from the pydantic models
	$(BIN)/python -m schemas.export

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
