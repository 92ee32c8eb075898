# AlphaFold HPC kit. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Test databases live in a cache keyed by the builder's content (tests/build_test_dbs.py).
TESTDATA_CACHE ?= $(HOME)/.cache/alphafold-hpc-kit

.PHONY: help deps testdata test test-fast test-integration demo check-py38 clean install uninstall check-install recipes locks

# make install PREFIX=/opt/alphafold VARIANT=cuda12 METHOD=apptainer|conda|venv [SITE_CONFIG=site.conf]
PREFIX ?= /opt/alphafold
VARIANT ?= cuda12
METHOD ?= apptainer
SITE_CONFIG ?=
# A checkout or pip requirement to install instead of the variant's AlphaFold git revision (conda, venv).
ALPHAFOLD_SOURCE ?=
# The installer needs only the standard library, so any python3 >= 3.8 runs it.
INSTALL_PY ?= python3

help:
	@echo "make deps       install system tools (as root) and the virtualenv at $(VENV)"
	@echo "make testdata   build the small real-data databases (cached)"
	@echo "make test       run the whole test suite (test-fast, then test-integration)"
	@echo "make test-fast  the fast tier: no services, no databases, no models (under 2 minutes)"
	@echo "make demo       run the main job end to end on small real data"
	@echo "make install    PREFIX=... VARIANT=cuda12|legacy-cuda11.0|legacy-cuda10.1 METHOD=apptainer|conda|venv [SITE_CONFIG=...]"
	@echo "make locks      resolve recipes/<variant>.requirements.txt (uv, PyPI); make recipes renders the recipes"
	@echo "make uninstall  PREFIX=... [VARIANT=...];  make check-install PREFIX=... [VARIANT=...] [GPU=1]"

deps: $(VENV)/.deps-stamp
	@if [ "$$(id -u)" = 0 ]; then scripts/install-system-deps.sh; \
	else echo "make deps: not root, skipping system packages (see debian-packages.txt)"; fi

# Reinstalls only when the pins or the package metadata change, so a second run is quick.
$(VENV)/.deps-stamp: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

testdata: deps
	$(PY) tests/build_test_dbs.py --cache $(TESTDATA_CACHE)

# Everything that runs inside the legacy images or on login nodes must import on Python 3.8.
check-py38:
	$(VENV)/bin/vermin --no-tips --violations -t=3.8- --backport typing kit_common fold_runtime data_sync installer

test-fast: deps check-py38
	$(PY) -m pytest -q tests/fast $(PYTEST_ARGS)

# Real Slurm, Lmod, environment-modules, HTTP/rsync servers, HMMER/HH-suite, AlphaFold and OpenMM.
test-integration: deps
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

test: test-fast test-integration

demo: deps
	scripts/demo.sh

clean:
	rm -rf build *.egg-info demo-output

install:
	$(INSTALL_PY) -m installer install --prefix "$(PREFIX)" --variant "$(VARIANT)" --method "$(METHOD)" $(if $(SITE_CONFIG),--site-config "$(SITE_CONFIG)") $(if $(ALPHAFOLD_SOURCE),--alphafold-source "$(ALPHAFOLD_SOURCE)")

# VARIANT only when given (not the default above): with one variant installed it may be left out.
GIVEN_VARIANT = $(if $(filter-out file,$(origin VARIANT)),--variant "$(VARIANT)")

uninstall:
	$(INSTALL_PY) -m installer uninstall --prefix "$(PREFIX)" $(GIVEN_VARIANT)

check-install:
	$(INSTALL_PY) -m installer check-install --prefix "$(PREFIX)" $(GIVEN_VARIANT) $(if $(GPU),--gpu)

recipes:
	$(INSTALL_PY) -m installer recipes

# Resolves every variant's pip stack (uv from .venv, PyPI); then run make recipes.
locks: deps
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(INSTALL_PY) -m installer locks
