# Kubemart developer commands; see README.md. Every target does its own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export KUBECONFIG_LOCAL := $(CURDIR)/.cluster/kubeconfig

.PHONY: setup tools venv chromium debs cluster cluster-down crds run test unit lint bench clean

setup: venv tools chromium debs

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

tools:
	hack/build.sh

# Headless Chromium for the runtime dashboard's test: Debian's package, installed only when missing.
chromium:
	@command -v chromium >/dev/null || if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "chromium is missing: install Debian's chromium (or set KUBEMART_CHROMIUM) for the dashboard test"; fi

# git (git sources, the CLI the operator runs) and gpg (the tests sign charts): Debian's packages,
# installed only when missing.
debs:
	@missing=""; command -v git >/dev/null || missing="$$missing git"; \
	  test -x /usr/bin/gpg || missing="$$missing gnupg"; \
	  if [ -z "$$missing" ]; then :; elif [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (install them for git sources and the signing tests)"; fi

cluster: tools
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

# crds/ and the chart's copy are generated from the pydantic models; a test fails when either is stale.
crds: venv
	$(PY) -m kubemart.models.crd crds charts/kubemart/crds

# The operator in the foreground, with the demo catalog served, registered and one app installed.
run: setup cluster
	KUBECONFIG=$(KUBECONFIG_LOCAL) hack/demo.sh run

lint: venv
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The whole suite. The session fixture starts the local cluster unless KUBEMART_TEST_CLUSTER=external.
test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Tests that need no cluster.
unit: venv
	$(VENV)/bin/pytest -m 'not cluster' $(PYTEST_ARGS)

# Speed and memory against raw helm on the local cluster; results in docs/benchmarks.md.
bench: setup cluster
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PY) bench/bench.py $(BENCH_ARGS)

clean: cluster-down
	rm -rf bin $(VENV)
