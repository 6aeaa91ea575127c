# The commands a newcomer needs. `make demo` and `make test` work from a clean clone.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

KERNEL := features/card_kernel.c features/card_kernel.h features/card_kernel_build.py \
	streams/payload_guard.c streams/payload_guard.h streams/payload_guard_build.py \
	models/tree_shap.c models/tree_shap.h models/tree_shap_build.py

.PHONY: setup test test-unit test-integration test-e2e test-cluster test-faults test-objstore soak lint docs format demo \
	bench fuzz stack-up stack-down schemas clean

$(STAMP): requirements/runtime.lock requirements/dev.lock pyproject.toml setup.py $(KERNEL)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/runtime.lock -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

setup: $(STAMP)  ## create .venv from both locks (runtime + dev) and install the project
	@bash scripts/install-browser.sh

test: setup  ## all test tiers against the real broker and Redis (starts what is missing)
	bash scripts/run-tests.sh

test-unit: setup  ## pure tests, no broker or Redis (~1 minute)
	bash scripts/run-tests.sh -m unit -q

test-integration: setup  ## the real broker and Redis (started when FRAUD_TEST_* are unset)
	bash scripts/run-tests.sh -m integration

test-e2e: setup  ## the real processes end to end
	bash scripts/run-tests.sh -m e2e

test-cluster: setup  ## a local Redis Cluster (3 primaries + 3 replicas) started by the tier
	bash scripts/run-tests.sh -m cluster tests/cluster

test-faults: setup  ## the fault-injection tier alone (its own broker and Redis per case)
	bash scripts/run-tests.sh -m faults tests/faults

test-objstore: setup  ## registry + training store on moto's S3 server (started by the tier) and a folder
	bash scripts/run-tests.sh -m objstore tests/objstore

soak: setup  ## the fault tier several times over (SOAK_ROUNDS, default 3); summaries in bench/results
	bash scripts/soak.sh

lint: setup  ## ruff, mypy, the import contracts (pyproject.toml) and the docs build
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m services.docs --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: setup  ## regenerate the reference pages, then mkdocs build --strict into site/
	$(BIN)/python -m services.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: setup  ## regenerate streams/schemas/*.json from the event classes
	$(BIN)/fraudctl schemas export

stack-up: setup
	$(BIN)/fraudctl stack up

stack-down: setup
	$(BIN)/fraudctl stack down

demo: setup  ## the whole system on the embedded stack
	bash scripts/demo.sh

fuzz: setup  ## 100,000 fuzzed payloads per run through every decoder + schemathesis on the API
	bash scripts/fuzz.sh

bench: setup  ## benchmarks: numbers printed and written to bench/results/
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) state site .pytest_cache .mypy_cache .ruff_cache
