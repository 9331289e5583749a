import numpy as np
import pytest
import torch

from precond.optim.kernels import _build


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def kernels():
    """The C++ kernels, built (or loaded from the cache); the test is skipped without them."""
    if _build.load() is None:
        pytest.skip(f"C++ kernels unavailable: {_build.status()['error']}")
    return True


@pytest.fixture
def one_thread():
    """Small tensors: one thread (parallel regions only cost time on a busy 2-core machine);
    the fast-path files' test_parallel_split_equals_loop covers the multi-threaded split."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
