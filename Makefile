# The two commands of README.md. Each creates the environment in .venv when it
# is missing (or when pyproject.toml changed) and then does its job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.valf-installed
# NVIDIA machines get TensorFlow's pip-installed CUDA libraries.
EXTRAS := study,test$(shell command -v nvidia-smi >/dev/null 2>&1 && echo ,cuda)
KERNEL := valf

export TF_CPP_MIN_LOG_LEVEL ?= 2
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: study book test env clean-env

# The studies `make study` runs; e.g. `make study STUDY=paper ABLATIONS=ablations` on a GPU
# machine with LungHist700 (after `valf sweep lr-selection`). SWEEP_ARGS go to every sweep.
STUDY      ?= quick
ABLATIONS  ?= quick-ablations
SWEEP_ARGS ?=

MATHJAX := book/_static/mathjax/tex-chtml.js

study: $(STAMP)
	$(BIN)/valf sweep $(STUDY) $(SWEEP_ARGS)
	$(BIN)/valf sweep $(ABLATIONS) $(SWEEP_ARGS)
	$(MAKE) --no-print-directory book

# The book of whatever is complete; rebuilds only pages whose inputs changed.
book: $(STAMP) $(MATHJAX)
	$(BIN)/valf book --study $(STUDY) --ablations $(ABLATIONS)
	@echo "Open _build/html/index.html"

# MathJax served with the book, so equations render offline (npm registry).
$(MATHJAX):
	@command -v npm >/dev/null || { echo "make book needs npm (Node.js) to fetch MathJax; install it, or copy MathJax 3's es5 folder to book/_static/mathjax"; exit 2; }
	rm -rf .cache/mathjax && mkdir -p .cache/mathjax book/_static/mathjax/output/chtml/fonts book/_static/mathjax/input/tex
	cd .cache/mathjax && npm install --silent --no-audit --no-fund --no-save mathjax@3.2.2
	cp .cache/mathjax/node_modules/mathjax/es5/tex-chtml.js book/_static/mathjax/
	cp -r .cache/mathjax/node_modules/mathjax/es5/output/chtml/fonts/woff-v2 book/_static/mathjax/output/chtml/fonts/
	cp -r .cache/mathjax/node_modules/mathjax/es5/input/tex/extensions book/_static/mathjax/input/tex/

test: $(STAMP) $(MATHJAX)
	$(BIN)/python -m pytest

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/valf install-kernel --name $(KERNEL) >/dev/null
	touch $@

clean-env:
	rm -rf $(VENV)
