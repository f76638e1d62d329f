# Garrison: `make demo` and `make test` work on a fresh machine with Python 3.11 and the package registries.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint format bench bench-env bench-scan bench-encrypt bench-serve bench-drift bench-ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/garrison demo --output garrison-report --workdir demo-workdir

lint: setup
	# --no-cache: a cached verdict can outlive a change elsewhere (a new conftest.py changes how imports sort)
	$(BIN)/ruff check --no-cache src tests bench scripts
	$(BIN)/ruff format --no-cache --check src tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_licenses.py

# PostgreSQL tests run against a throwaway server when one can be started (CI requires it).
test: setup lint
	@if [ -z "$$GARRISON_TEST_PG_URL" ] && url=$$(bash scripts/postgres-for-tests.sh 2>/dev/null | tail -n 1) && [ -n "$$url" ]; then \
		export GARRISON_TEST_PG_URL="$$url"; fi; \
	GARRISON_SCREENSHOTS=$${GARRISON_SCREENSHOTS:-tests-artifacts/ui} $(BIN)/python -m pytest -p no:cacheprovider

format: setup
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

bench: setup
	$(BIN)/python bench/startup.py

# Peer scanners for bench/, each in its own venv (never in .venv: their pins conflict).
BENCH_PEERS := modelscan picklescan fickling presidio art evidently

bench-env:
	@for peer in $(BENCH_PEERS); do \
		test -x .bench-env-$$peer/bin/python || $(PYTHON) -m venv .bench-env-$$peer; \
		.bench-env-$$peer/bin/python -m pip install --quiet -r bench/requirements-$$peer.txt; \
	done

bench-serve: setup
	@command -v wrk >/dev/null || { echo "bench-serve needs wrk (Debian: apt-get install wrk)"; exit 2; }
	$(BIN)/python bench/serve_bench.py --rounds 3 --duration 10

# the dashboard's page speed: 1,000 audits and 100,000 findings in a SQLite store (issue #9 bar: < 200 ms a page)
bench-ui: setup
	$(BIN)/python bench/ui_bench.py --rounds 5

bench-drift: setup bench-env
	$(BIN)/python bench/drift_bench.py --rows 1000000 --rounds 3 --evidently-python .bench-env-evidently/bin/python
	$(BIN)/python bench/probing_bench.py

bench-scan: setup bench-env
	$(BIN)/python bench/scan_bench.py --rounds 5
	$(BIN)/python bench/corpus_bench.py

bench-encrypt: setup
	$(BIN)/python bench/encrypt_bench.py --rounds 5

# Adversarial robustness against ART and torchattacks (issue #4); about an hour on 2 cores.
bench-adv: setup bench-env
	.bench-env-art/bin/python bench/adv_bench.py --repeats 5
	.bench-env-art/bin/python bench/apgd_same_starts.py
	.bench-env-art/bin/python bench/advtrain_bench.py --epochs 10
	.bench-env-art/bin/python bench/ensemble_bench.py --rounds 3
	$(BIN)/python bench/masking_bench.py

# Data protection and privacy (issue #5).
bench-privacy: setup bench-env
	.bench-env-presidio/bin/python bench/anonymize_bench.py --rows 1000000 --presidio-rows 10000 --pool 10000
	.bench-env-art/bin/python bench/mia_bench.py --models 32
	$(BIN)/python bench/dp_logreg.py

clean:
	rm -rf $(VENV) .bench-env-* garrison-report demo-workdir .pytest_cache .ruff_cache
