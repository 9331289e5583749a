# Two commands do everything on a fresh machine:
#   make demo   install, then run the main job
#   make test   install, then run the default test suite (< 10 minutes, no GPU)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU wheel of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install demo test test-slow test-all bench gpu-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	# test-only reference: agd.py of the AGD authors' package (PyPI atorch), which needs only
	# torch; the package itself (transformers, dlrover, ...) is not installed
	$(PY) -m pip download -q --no-deps --only-binary=:all: "atorch==0.2.5" -d $(VENV)/refs
	$(PY) -c "import glob, zipfile; zipfile.ZipFile(sorted(glob.glob('$(VENV)/refs/atorch-*.whl'))[-1]).extract('atorch/optimizers/agd.py', '$(VENV)/refs')"
	# test-only reference for tests/curvature/test_curvlinops.py: curvlinops (exact GGN / Hessian as
	# linear operators) on BackPACK. BackPACK requires torchvision, which would replace the CPU torch
	# with a CUDA build: their real needs go in first with torch pinned, then both with --no-deps
	$(PY) -m pip install -q "$(TORCH)" "einops==0.8.2" "unfoldNd==0.2.3" "einconv==0.1.0" "linear_operator==0.6.1" "opt-einsum==3.4.0" "tqdm>=4"
	$(PY) -m pip install -q --no-deps "backpack-for-pytorch==1.7.1" "curvlinops-for-pytorch==3.0.1"
	# build the fused C++ kernels now (about 20 s, once per machine and torch), so that no first
	# optimizer step of `make demo` or `make test` waits for the compiler
	$(PY) -c "from precond.optim.kernels import _build; _build.main()"
	touch $@

demo: install
	$(VENV)/bin/precond demo
	$(VENV)/bin/precond claims --quick

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

bench: install
	$(VENV)/bin/precond bench step

# On a machine with a GPU (torch with CUDA, triton): the CUDA tests, then the CUDA bench in fp32
# and bf16 (docs/fast_steps.md, "GPU path"; not part of `make test`)
GPU_BENCH = $(PY) -m precond bench step --device cuda --optimizers agd,agd_amsgrad,adam,amsgrad,adamw --paths foreach,fused --no-memory
gpu-check:
	$(PY) -m pytest -q tests/optim/test_triton_cuda.py tests/optim/test_fast_paths_cuda.py
	$(GPU_BENCH) --json bench_cuda_fp32.json
	$(GPU_BENCH) --dtype bfloat16 --json bench_cuda_bf16.json

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
