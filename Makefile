# Two commands do everything on a fresh machine:
#   make demo   install, then run the main job
#   make test   install, then run the default test suite (< 10 minutes, no GPU)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU wheel of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install demo test test-slow test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	# test-only: the AGD authors' package; its agd.py needs only torch, the rest of its
	# dependencies (transformers, dlrover, ...) are left out on purpose
	$(PY) -m pip install -q --no-deps "atorch==0.2.5"
	touch $@

demo: install
	$(VENV)/bin/precond demo

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

bench: install
	$(VENV)/bin/precond bench step

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
