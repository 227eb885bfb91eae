# EAFIX platform. `make demo` renders and summarises the charts; `make test` runs every test.
# Both create/update the local virtualenv first, exactly as uv.lock pins it (uv, itself pinned
# here, is bootstrapped into .tools/uv); checkov lives in its own tool virtualenv, pinned by
# ci/checkov/requirements.txt (its pins clash with pytest's).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/uv/bin/uv
PYTEST_ARGS ?= -n 2
PLOTLY_JS := services/eafix/reporting/static/plotly-finance.min.js

# (`up` too)
.PHONY: all venv tools crd-validate plotly-js packages demo up bench bench-peers test test-chart test-service lint policy format docs schemas manifests clean

all: lint test

$(UV):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet uv==$(UV_VERSION)

# --locked: stop when uv.lock no longer matches pyproject.toml (run `$(UV) lock` and commit it).
$(BIN)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python $(PYTHON) --quiet
	touch $@

venv: $(BIN)/.installed $(PLOTLY_JS)

$(TOOLS)/checkov/.installed: ci/checkov/requirements.txt | $(UV)
	test -x $(TOOLS)/checkov/bin/python || $(UV) venv --quiet --python $(PYTHON) $(TOOLS)/checkov
	$(UV) pip install --quiet --python $(TOOLS)/checkov/bin/python --require-hashes -r ci/checkov/requirements.txt
	touch $@

tools: $(TOOLS)/checkov/.installed

# Go programs built from the pinned modules under tools/ (one module per upstream project, see
# tools/build.sh) into .tools/bin: helm3, helm (= helm4), kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, alertmanager, promtool. A module is rebuilt only when its go.mod,
# go.sum, own main.go or tools/build.sh changes (stamp files); the first build of all takes
# ~30 min on 2 cores, a cached `make tools-go` well under a second. Go's build and module caches
# stay in their default places (~/.cache/go-build, ~/go/pkg/mod).
GO ?= go
GO_TOOL_MODULES := helm3 helm4 kubernetes etcd kwok alertmanager prometheus
GO_TOOLS_NICE ?= nice -n 10

$(TOOLS)/bin/.%.built: tools/%/go.mod tools/%/go.sum tools/build.sh
	GO=$(GO) $(GO_TOOLS_NICE) tools/build.sh $* $(TOOLS)/bin
	touch $@

$(TOOLS)/bin/.etcd.built: tools/etcd/cmd/etcd/main.go

.PHONY: tools-go tools-test
tools-go: $(GO_TOOL_MODULES:%=$(TOOLS)/bin/.%.built)
# what `make test` runs for real: Helm 3 and 4, promtool, Alertmanager (compliance end to end)
TEST_TOOL_MODULES := helm3 helm4 prometheus alertmanager
tools-test: $(TEST_TOOL_MODULES:%=$(TOOLS)/bin/.%.built)

# Argo CD's CRDs for the cluster tests: the release tools/argo-cd-crds/go.mod pins, from the Go
# module proxy into the module cache (verified against its go.sum; ~56 MB once, then cached).
.PHONY: argo-cd-crds
argo-cd-crds:
	cd tools/argo-cd-crds && GOFLAGS=-mod=readonly $(GO) mod download github.com/argoproj/argo-cd/v3

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

# The plotly.js report.html inlines: the finance partial bundle (every trace type the report draws),
# pinned with its sha512 in ci/plotly-js/package-lock.json (npm ci checks it), copied into the package
# (gitignored; docs/backtest.md says how to move the pin). A prerequisite of `venv`.
$(PLOTLY_JS): ci/plotly-js/package-lock.json ci/plotly-js/package.json
	npm ci --prefix ci/plotly-js --ignore-scripts --no-audit --no-fund
	mkdir -p $(@D) && cp ci/plotly-js/node_modules/plotly.js-finance-dist-min/plotly-finance.min.js $@

plotly-js: $(PLOTLY_JS)

demo: venv crd-validate
	$(BIN)/eafix charts summary
	$(BIN)/eafix sample-data --out out/sample/EURUSD_H1.csv --calendar
	$(BIN)/eafix backtest --data out/sample/EURUSD_H1.csv --out out/backtest --reentry \
		--calendar out/sample/EURUSD_H1_calendar.csv
	@echo
	@echo "The operator web UI against this demo's data: run 'make up' (= eafix up --data out/sample/EURUSD_H1.csv:"
	@echo "'eafix serve gui-gateway' and its nine peers as processes on throwaway Redis and PostgreSQL, the sample"
	@echo "replayed as a live feed), open http://127.0.0.1:8080/ and log in with the admin API key in the file it"
	@echo "prints ('admin key is in ...'); Ctrl-C stops it all. The report of this backtest: out/backtest/report.html"

# The ten services on throwaway Redis/PostgreSQL with a replayed feed; Ctrl-C stops and removes it all.
up: packages venv
	$(BIN)/eafix up

# Every benchmark under bench/ (bench/run.py): bench/results/bench.json + bench.md, and the table in
# docs/performance.md. 10-15 min on 2 cores; `make bench QUICK=1` 3-5 min (docs left alone). Not in `make test`.
bench: packages venv
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,--docs)

# EAFIX against backtesting.py 0.6.6 (installed from PyPI into out/peers/venv, never into .venv) on its
# EURUSD H1 sample: entries compared one by one, bars/s of both (docs/backtest.md). Not in `make test`.
bench-peers: venv
	$(BIN)/python bench/peers/compare.py --out out/peers

# Plain manifests for kubectl in the deployment docs' layout (deploy/kubernetes/, not committed):
# make manifests ENV=prod
ENV ?= prod
manifests: venv
	$(BIN)/eafix charts manifests --env $(ENV) --out deploy/kubernetes

test: packages venv tools tools-test crd-validate
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

test-chart: venv tools tools-test crd-validate
	$(BIN)/python -m pytest tests/chart $(PYTEST_ARGS)

# A throwaway control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and Helm 4:
# install, upgrade, rollback, uninstall of eafix-trading (tests/cluster).
test-cluster: packages venv tools-go argo-cd-crds
	$(BIN)/python -m pytest tests/cluster -p no:cacheprovider

test-service: packages venv
	$(BIN)/python -m pytest tests/service $(PYTEST_ARGS)

lint: venv tools-test
	$(BIN)/ruff check services tests ci
	$(BIN)/mypy
	$(UV) lock --check --quiet
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
