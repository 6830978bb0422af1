# Shipway developer entry points. Everything runs from a project-local virtualenv (.venv),
# created on first use, so a fresh clone needs nothing but python3 and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/hack

.PHONY: venv host-deps test test-unit test-e2e lint typecheck crd crd-check docs docs-check check \
        cluster-up cluster-down cluster-status demo bench bench-peers clean \
        chart-check chart-readme buildkit-manifest operator-image image-lock

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || $(PYTHON) -m localkube host-deps python3-venv
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Host packages of the local cluster (Debian/Ubuntu, as root: apt-get; a one-line error
## elsewhere) and Go from the Go module proxy if the host has none recent enough. Uses the
## system python3: it runs before the virtualenv exists. Fast when everything is present.
host-deps:
	$(PYTHON) -m localkube host-deps

## Static checks: ruff, mypy --strict (the package and the unit tests), import contracts, CRD drift.
lint: $(STAMP)
	$(VENV)/bin/ruff check operator hack tests
	$(VENV)/bin/ruff format --check operator hack tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/unit
	cd $(CURDIR) && $(VENV)/bin/lint-imports

crd: $(STAMP)
	$(PY) -m shipway.compiler.crd --write

crd-check: $(STAMP)
	$(PY) -m shipway.compiler.crd --check

## The module list of docs/operator.md, from the module docstrings (docs-check: its drift).
docs: $(STAMP)
	$(PY) hack/moduledocs.py --write

docs-check: $(STAMP)
	$(PY) hack/moduledocs.py --check

## The Helm chart: helm lint/template for every supported shape of values, the refused ones,
## and the values table of docs/helm.md (chart-readme rewrites it). helm comes from the localkube cache.
HELM := $(or $(SHIPWAY_CACHE_DIR),/var/cache/shipway)/bin/helm

chart-check: $(STAMP)
	$(PY) -m localkube build helm
	$(VENV)/bin/ruff check docker hack/chartcheck
	$(VENV)/bin/ruff format --check docker hack/chartcheck
	$(VENV)/bin/mypy --strict hack/chartcheck docker/prune_venv.py
	$(PY) -m chartcheck --helm $(HELM)
	$(PY) -m localkube.addons.buildkit.manifest --helm $(HELM)

## BuildKit's objects as the chart renders them, kept in the tree so that `make demo` needs no
## Helm (hack/localkube/addons/buildkit/manifest.py); chart-check fails when they drift.
buildkit-manifest: $(STAMP)
	$(PY) -m localkube build helm
	$(PY) -m localkube.addons.buildkit.manifest --helm $(HELM) --write

chart-readme: $(STAMP)
	$(PY) -m chartcheck --write

## The operator image built from the Dockerfile by the local cluster's BuildKit, pushed to its
## registry (docs/buildkit.md).
operator-image: $(STAMP)
	$(PY) -m localkube.addons.buildkit.build

image-lock: $(STAMP)
	$(PY) -m localkube.images.operator --lock

check: lint typecheck crd-check docs-check chart-check

## Unit tests: pure code, no cluster.
test-unit: $(STAMP)
	$(PY) -m pytest -m "not e2e" tests

HOST_DEPS := $(if $(SHIPWAY_E2E_KUBECONFIG),,host-deps)

## The full suite: static checks, unit tests, then end-to-end tests on a real cluster
## (the local one, started if needed, or SHIPWAY_E2E_KUBECONFIG).
test: $(HOST_DEPS) check test-unit test-e2e

test-e2e: $(STAMP)
	$(PY) -m pytest -m e2e --durations=20 tests

## Quick start: bring everything up and run the walkthrough pipeline.
demo: $(STAMP)
	$(PY) hack/demo.py

## The local Kubernetes cluster (hack/localkube; Linux and root), see docs/local-cluster.md.
## test-e2e starts it first unless SHIPWAY_E2E_KUBECONFIG names another cluster.
LOCALKUBE := $(PY) -m localkube
E2E_CLUSTER := $(if $(SHIPWAY_E2E_KUBECONFIG),,cluster-up)

cluster-up: host-deps $(STAMP)
	$(LOCALKUBE) up

cluster-down: $(STAMP)
	$(LOCALKUBE) down

cluster-status: $(STAMP)
	$(LOCALKUBE) status

test-e2e: $(E2E_CLUSTER)

## Benchmarks on the local cluster (docs/performance.md): overhead, scale, restart; prints a
## table and writes $(BENCH_OUT). BENCH_SCALE=0.1 runs 100 pipelines instead of 1000.
BENCH_OUT ?= bench-results.json
BENCH_SCALE ?= 1

bench: $(STAMP) cluster-up
	BENCH_OUT=$(BENCH_OUT) BENCH_SCALE=$(BENCH_SCALE) $(PY) -m bench

## Side by side with Argo Workflows v4.0.5 (issue 29): builds its controller and executor from
## the Go module proxy on first use (cached by version), installs it for the run, removes it.
BENCH_PEERS_OUT ?= bench-peers.json

bench-peers: $(STAMP) cluster-up
	BENCH_OUT=$(BENCH_PEERS_OUT) $(PY) -m bench.peers

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
