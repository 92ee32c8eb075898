# AlphaFold HPC kit. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# ColabFold's fork, the alternative distribution, in a venv of its own (make test-fork).
FORK_VENV ?= .venv-fork
FORK_PY := $(FORK_VENV)/bin/python
# Every run lists its 15 slowest tests, so the suite's budget is kept by the suite.
PYTEST_ARGS ?= --durations=15
# The integration tests run on this many pytest-xdist workers (most of a test is one process:
# a model's trace, a search); the Slurm and installed-venv tests share one worker. One more than
# the 2 cores of the machine it is timed on: many tests wait (Slurm, servers, PyPI, locks), and on
# two workers the cores were idle a fifth of the time.
TEST_WORKERS ?= 3
# The fast tier's workers: it took 1 min 42 s on one (near its 2-minute limit), 54 s on two.
FAST_WORKERS ?= 2
# `make test` fails, after listing the slowest tests, when it took longer than this.
TEST_BUDGET_S ?= 1800
# Test databases live in a cache keyed by the builder's content (tests/build_test_dbs.py).
TESTDATA_CACHE ?= $(HOME)/.cache/alphafold-hpc-kit

.PHONY: help deps testdata test test-fast test-integration test-fork demo gpu-check check-py38 clean install uninstall check-install recipes locks

# make install PREFIX=/opt/alphafold VARIANT=cuda12 METHOD=apptainer|conda|venv [SITE_CONFIG=site.conf] [DEFAULT=yes: this variant becomes the default module]
PREFIX ?= /opt/alphafold
VARIANT ?= cuda12
METHOD ?= apptainer
SITE_CONFIG ?=
# Where AlphaFold comes from (installer/sources.py): empty clones DeepMind's repository at the
# variant's revision; or a directory of its sha256-checked archives, one archive, a checkout, or
# pip requirements (ColabFold's fork, on purpose).
ALPHAFOLD_SOURCE ?=
# Offline archives of DeepMind's sources at the pinned revisions (this machine and CI have them):
# make deps and the tests' installs take AlphaFold from them when ALPHAFOLD_SOURCE is empty.
ALPHAFOLD_ARCHIVES ?= $(wildcard $(abspath ../shared/upstream/alphafold))
export ALPHAFOLD_ARCHIVES
# The stereo-chemistry file: empty downloads it from OpenStructure; or a local copy (sha256-checked).
STEREO_SOURCE ?=
export STEREO_SOURCE
# The development stack is this variant's lock with DeepMind's AlphaFold, installed by the installer.
DEV_VARIANT := cpu
# OpenStructure's stereo-chemistry file for make deps without its server: ColabFold's wheel on
# PyPI carries the same bytes (the installer checks them against the pinned sha256).
STEREO_COPY := $(TESTDATA_CACHE)/stereo_chemical_props.txt
# make deps and the tests' installs use that copy unless STEREO_SOURCE names another.
$(VENV)/.deps-stamp test-fast test-integration test-fork: STEREO_SOURCE := $(or $(STEREO_SOURCE),$(STEREO_COPY))
# The installer needs only the standard library, so any python3 >= 3.8 runs it.
INSTALL_PY ?= python3

help:
	@echo "make deps       install system tools (as root) and the virtualenv at $(VENV)"
	@echo "make testdata   build the small real-data databases (cached)"
	@echo "make test       run the whole test suite (test-fast, test-integration, then test-fork in .venv-fork)"
	@echo "make test-fast  the fast tier: no services, no databases, no models (under 2 minutes)"
	@echo "make demo       run the main job end to end on small real data"
	@echo "make gpu-check  one table of the GPU stage measured on this node in <= 8 min [GPU_CHECK_ARGS='--python ...']"
	@echo "make install    PREFIX=... VARIANT=$$($(INSTALL_PY) -c 'from installer import recipes; print("|".join(recipes.variants()))') METHOD=apptainer|conda|venv [SITE_CONFIG=...] [DEFAULT=yes]"
	@echo "make locks      resolve recipes/<variant>.requirements.txt (uv, PyPI); make recipes renders the recipes"
	@echo "make uninstall  PREFIX=... [VARIANT=...];  make check-install PREFIX=... [VARIANT=...] [GPU=1]"

deps: $(VENV)/.deps-stamp $(FORK_VENV)/.deps-stamp
	@if [ "$$(id -u)" = 0 ]; then scripts/install-system-deps.sh; \
	else echo "make deps: not root, skipping system packages (see debian-packages.txt)"; fi

# Reinstalls only when the pins or the install code change, so a second run is quick. The stack
# is installed by the installer's finish-stack, as every route installs it, plus the dev tools.
$(VENV)/.deps-stamp: requirements.txt pyproject.toml recipes/$(DEV_VARIANT).requirements.txt \
		recipes/alphafold-archives.sha256 installer/stack.py installer/sources.py $(STEREO_COPY)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(INSTALL_PY) -m installer finish-stack \
		--variant $(DEV_VARIANT) --env $(VENV) --venv-extra --editable $(if $(or $(ALPHAFOLD_SOURCE),$(ALPHAFOLD_ARCHIVES)),--alphafold-source "$(or $(ALPHAFOLD_SOURCE),$(ALPHAFOLD_ARCHIVES))")
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(FORK_VENV)/.deps-stamp: requirements-fork.txt pyproject.toml
	test -x $(FORK_PY) || python3 -m venv $(FORK_VENV)
	$(FORK_PY) -m pip install -q --upgrade pip
	$(FORK_PY) -m pip install -q -r requirements-fork.txt
	$(FORK_PY) -m pip install -q --no-deps -e .
	touch $@

$(STEREO_COPY):
	mkdir -p $(TESTDATA_CACHE)/wheels
	python3 -m pip download -q --no-deps -d $(TESTDATA_CACHE)/wheels $$(grep '^alphafold-colabfold==' requirements-fork.txt)
	python3 -c 'import glob, sys, zipfile; w = sorted(glob.glob(sys.argv[1] + "/alphafold_colabfold-*.whl"))[-1]; \
		open(sys.argv[2] + ".tmp", "wb").write(zipfile.ZipFile(w).read("alphafold/common/stereo_chemical_props.txt"))' \
		$(TESTDATA_CACHE)/wheels $@
	mv $@.tmp $@

testdata: deps
	$(PY) tests/build_test_dbs.py --cache $(TESTDATA_CACHE)

# Everything that runs inside the legacy images or on login nodes must import on Python 3.8.
check-py38:
	$(VENV)/bin/vermin --no-tips --violations -t=3.8- --backport typing kit_common fold_runtime data_sync installer

test-fast: deps check-py38
	$(PY) -m pytest -q tests/fast -n $(FAST_WORKERS) $(PYTEST_ARGS)

# Real Slurm, Lmod, environment-modules, HTTP/rsync servers, HMMER/HH-suite, AlphaFold and OpenMM.
test-integration: deps
	$(PY) -m pytest -q tests/integration -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# ColabFold's fork with the kit's fidelity patches, in its own venv.
test-fork: deps
	DEEPMIND_PYTHON=$(abspath $(PY)) $(FORK_PY) -m pytest -q tests/fork $(PYTEST_ARGS)

test: export TEST_STARTED := $(shell date +%s)
test: export TEST_BUDGET_S := $(TEST_BUDGET_S)
test: test-fast test-integration test-fork

demo: deps
	scripts/demo.sh

gpu-check: deps
	$(PY) benchmarks/gpu_check.py --cache "$(TESTDATA_CACHE)" $(GPU_CHECK_ARGS)

clean:
	rm -rf build *.egg-info demo-output

install:
	$(INSTALL_PY) -m installer install --prefix "$(PREFIX)" --variant "$(VARIANT)" --method "$(METHOD)" $(if $(SITE_CONFIG),--site-config "$(SITE_CONFIG)") $(if $(ALPHAFOLD_SOURCE),--alphafold-source "$(ALPHAFOLD_SOURCE)") $(if $(filter yes,$(DEFAULT)),--make-default)

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
