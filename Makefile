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

.PHONY: study test env clean-env

study: $(STAMP)
	@echo "make study: the study itself (data, training runs, book) is not built yet."
	@echo "The library is ready: see README.md for the losses and callbacks."
	@exit 2

test: $(STAMP)
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
