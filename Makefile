# The verbs people type. Everything runs from the project's own virtual
# environment, created on first use from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The dashboard's front-end libraries (Chart.js), from npm by its package-lock.json.
DASHBOARD := gateway/static/dashboard
# The AsyncAPI JSON schemas the event catalog (docs/asyncapi.yaml) is checked against.
DOCS := docs
# Where `make demo` loads its data set, and with which token (the local run's by default).
DEMO_ARGS ?=

.PHONY: setup run demo asyncapi test test-services bench soak lint format migrate clean

setup: $(VENV)/.installed $(DASHBOARD)/node_modules/.installed $(DOCS)/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Installed into a git-ignored folder and served by the gateway: nothing from a CDN.
$(DASHBOARD)/node_modules/.installed: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "setup needs npm (Node.js) for the dashboard's chart library" >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(DOCS)/node_modules/.installed: $(DOCS)/package.json $(DOCS)/package-lock.json
	@command -v npm >/dev/null || { echo "setup needs npm (Node.js) for the AsyncAPI schemas" >&2; exit 1; }
	cd $(DOCS) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Every service and the gateway on 127.0.0.1:8000, SQLite files under CRM_DATA_DIR.
run: setup
	$(BIN)/crm up

# A realistic data set through the HTTP API of the system `make run` started (see README).
demo: setup
	$(BIN)/crm demo $(DEMO_ARGS)

# The event catalog, written again from the event schemas.
asyncapi: setup
	$(BIN)/crm asyncapi

# Makes sure RabbitMQ (with its management API), PostgreSQL and Redis answer.
test-services: setup
	$(BIN)/python -m tests.support.prepare

test: test-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Figures beside baselines measured in the same run (see bench/run.py).
bench: test-services
	$(BIN)/python -m bench.run

# Minutes of mixed traffic, then the views against a rebuild and each service's memory
# over time (see bench/soak.py). Not in CI. SOAK_ARGS="--minutes 10 --rate 30".
SOAK_ARGS ?=
soak: test-services
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: setup
	$(BIN)/crm migrate

clean:
	rm -rf $(VENV) data *.egg-info $(DASHBOARD)/node_modules $(DOCS)/node_modules
