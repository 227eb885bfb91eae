# EAFIX platform. `make demo` renders and summarises the charts; `make test` runs every test.
# Both create/update the local virtualenv first; checkov lives in its own tool virtualenv
# (its pins clash with pytest's).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
CHECKOV_VERSION := 3.3.30
PYTEST_ARGS ?= -n 2

.PHONY: all venv tools crd-validate packages demo test test-chart test-service lint policy format docs schemas manifests clean

all: lint test

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

$(TOOLS)/checkov/.installed:
	test -x $(TOOLS)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

tools: $(TOOLS)/checkov/.installed

# Debian packages the tests run for real (redis-server, PostgreSQL); installed when missing.
packages:
	ci/ensure_packages.sh

# The custom-resource validator (ci/crd-validate: @kubernetes-models/* from its lockfile; Node >= 20).
# The stamp is a copy of the lockfile, so `npm ci` reruns only when the lockfile changes (and the
# tests can tell a stale install: eafix.platform.custom_resources).
CRD_VALIDATE := ci/crd-validate
$(CRD_VALIDATE)/node_modules/.eafix-lock.json: $(CRD_VALIDATE)/package-lock.json $(CRD_VALIDATE)/package.json
	npm ci --prefix $(CRD_VALIDATE) --ignore-scripts --no-audit --no-fund
	cp $(CRD_VALIDATE)/package-lock.json $@

crd-validate: $(CRD_VALIDATE)/node_modules/.eafix-lock.json

demo: venv crd-validate
	$(BIN)/eafix charts summary
	$(BIN)/eafix sample-data --out out/sample/EURUSD_H1.csv
	$(BIN)/eafix backtest --data out/sample/EURUSD_H1.csv --out out/backtest

# Plain manifests for kubectl in the deployment docs' layout (deploy/kubernetes/, not committed):
# make manifests ENV=prod
ENV ?= prod
manifests: venv
	$(BIN)/eafix charts manifests --env $(ENV) --out deploy/kubernetes

test: packages venv tools crd-validate
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-chart: venv tools crd-validate
	$(BIN)/python -m pytest tests/chart $(PYTEST_ARGS)

test-service: packages venv
	$(BIN)/python -m pytest tests/service $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check services tests ci
	$(BIN)/mypy
	$(BIN)/python ci/bundle_values_schema.py --check
	$(BIN)/python ci/gen_chart_readme.py --check
	$(BIN)/python ci/lint_charts.py
	$(BIN)/python ci/check_schema_compat.py --base $$(git rev-parse -q --verify HEAD~1 || echo HEAD)

# The policy gate: every chart x every profile through kube-linter/Polaris rules, kubernetes-validate,
# custom-resource checks, Pod Security restricted, the flow matrix and checkov (docs/security.md).
policy: venv tools crd-validate
	$(BIN)/python ci/policy.py

# Regenerate what is generated: values schemas and the charts' parameter tables.
docs schemas: venv
	$(BIN)/python ci/bundle_values_schema.py
	$(BIN)/python ci/gen_chart_readme.py

format: venv
	$(BIN)/ruff check --fix services tests ci

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache $(CRD_VALIDATE)/node_modules
