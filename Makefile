# The two commands of the README:
#   make study   set everything up, then run the study at its quick preset on the CPU and render the report
#   make test    set everything up, then run every test (pytest + the notebooks)
# Other targets: make setup | lab (JupyterLab on nbs/, kernel "Python (nncomp)") | export (clean notebooks, export
# nncomp/, write README.md) | docs | bench
# setup installs nncomp editable with its dev extras: the library, the study's extras (papermill, Dask, ...), the docs'
# extras, nbdev, pytest and JupyterLab (settings.ini: requirements, study_, docs_ and dev_requirements).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PRESET ?= quick
# Where a local PyTorch wheel is on pip's find-links (these machines), take it: an unpinned torch would
# download a multi-GB CUDA build. Everywhere else pip resolves settings.ini's torch>=2.4 normally.
LOCAL_TORCH ?= torch==2.13.0

# Real data: $$NNCOMP_DATA when set; else the project's shared data folder beside the checkout, where there is one;
# else nncomp looks in its cache and downloads from the datasets' canonical mirrors.
ifeq ($(NNCOMP_DATA),)
  ifneq ($(wildcard ../shared/data/mnist),)
    export NNCOMP_DATA := $(abspath ../shared/data)
  endif
endif

.PHONY: setup study test lab export clean-nbs docs bench chromium

setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/pip install -qq --no-index --no-deps "$(LOCAL_TORCH)" 2>/dev/null; \
	then $(BIN)/pip install -qq "$(LOCAL_TORCH)"; else $(BIN)/pip install -qq "torch>=2.4"; fi
	$(BIN)/pip install -qq -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name nncomp --display-name "Python (nncomp)" >/dev/null
	touch $@

study: setup
	$(BIN)/nncomp_study --preset $(PRESET)

# Two test processes at a time, one torch thread each: small tensor programs slow down many-fold when the
# threads of two processes compete for two cores.
test: setup chromium
	$(BIN)/python tests/check_export.py
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 tests
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

# JupyterLab on the notebooks, in the venv's kernel; offline-safe (read-only extension manager); root needs --allow-root
lab: setup
	$(BIN)/jupyter lab --notebook-dir=nbs --LabApp.extension_manager=readonly $$([ "$$(id -u)" = 0 ] && echo --allow-root)

export: setup
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	$(BIN)/python -m nncomp.tools.docs readme

clean-nbs: setup
	$(BIN)/nbdev_clean

docs: setup chromium
	$(BIN)/python -m nncomp.tools.docs build
	$(BIN)/python -m nncomp.tools.docs check

# headless Chromium for the docs check (tests/test_docs.py skips without it); installed where we are root with apt-get
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: chromium could not be installed (needs root, apt-get and Debian's mirrors): the docs check is skipped"

# make bench BENCH_ARGS="--threads 2 --conv-runs 0": options of `python -m nncomp.tools.bench` (default: every program)
bench: setup
	$(BIN)/python -m nncomp.tools.bench $(BENCH_ARGS)
