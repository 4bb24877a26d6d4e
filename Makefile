# The two commands of README.md. Each creates the environment in .venv when it is missing (or
# when pyproject.toml changed) and then does its job. Everything comes from the Python package
# registry; the book's MathJax too (a pinned wheel).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.valf-installed
# Two distributions, both editable: the library (valf, at the root) with the three Keras
# backends (the tests run on all three), and the study built on it (valf_study/); NVIDIA
# machines also get the CUDA libraries of TensorFlow and JAX.
LIBRARY_EXTRAS := tensorflow,jax,torch,test
STUDY_EXTRAS   := test,dev$(shell command -v nvidia-smi >/dev/null 2>&1 && echo ,cuda)
KERNEL := valf

export TF_CPP_MIN_LOG_LEVEL ?= 2
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: study book test test-fast test-library lint env clean-env

# The studies `make study` runs; e.g. `make study STUDY=paper ABLATIONS=ablations` on a GPU
# machine with LungHist700 (after `valf sweep lr-selection`). BACKEND (tensorflow, jax or
# torch) is the Keras backend of the runs; SWEEP_ARGS go to every sweep. ABLATIONS=none (or
# empty) runs and shows no ablation study: `make study STUDY=own-data ABLATIONS=none`.
STUDY      ?= quick
ABLATIONS  ?= quick-ablations
CV         ?= $(STUDY)-cv
# The studies on real images (not histopathology) and the data sets they need, fetched from the
# package registry first; REAL=none runs none.
REAL       ?= br35h mnist-lt
FETCH      ?= br35h mnist
BACKEND    ?=
SWEEP_ARGS ?=
SWEEP      := $(BIN)/valf sweep $(if $(BACKEND),--backend $(BACKEND)) $(SWEEP_ARGS)

study: $(STAMP)
	$(SWEEP) $(STUDY)
	$(foreach name,$(filter-out none,$(if $(filter-out none,$(REAL)),$(FETCH))),$(BIN)/valf data fetch $(name) --dest data/$(name) &&) true
	$(foreach name,$(filter-out none,$(REAL)),$(SWEEP) $(name) &&) true
	$(if $(filter-out none,$(ABLATIONS)),$(SWEEP) $(ABLATIONS))
	$(MAKE) --no-print-directory book

# The book of whatever is complete; executes again only the pages whose inputs changed.
book: $(STAMP)
	$(BIN)/valf book --study $(STUDY) --ablations "$(or $(ABLATIONS),none)" --cv "$(or $(CV),none)" \
	    --real "$(or $(REAL),none)"
	@echo "Open _build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything not marked `slow` (no test that trains a model).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

# The library alone, as a user who wants the losses installs it: a fresh virtual environment
# with the library, Keras, JAX and pytest, nothing of the study; its tests on JAX (jitted fits).
LIBRARY_VENV := .cache/library-venv
test-library:
	rm -rf $(LIBRARY_VENV) && $(PYTHON) -m venv $(LIBRARY_VENV)
	$(LIBRARY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LIBRARY_VENV)/bin/python -m pip install --quiet ".[jax,test]"
	KERAS_BACKEND=jax $(LIBRARY_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/library

# What CI checks besides the tests (pre-commit runs the same before each commit).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

env: $(STAMP)

$(STAMP): pyproject.toml valf_study/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(LIBRARY_EXTRAS)]" -e "./valf_study[$(STUDY_EXTRAS)]"
	$(BIN)/valf install-kernel --name $(KERNEL) >/dev/null
	touch $@

clean-env:
	rm -rf $(VENV)
