import os

# Tests must behave the same on every machine: two CPU threads, no GPU surprises.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Under pytest-xdist each worker process gets its share of the cores (inherited by the CLI
# subprocesses the tests start): two workers with two OpenMP threads each on two cores made a
# six-step Table 1 run five times slower than alone.
_xdist_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _xdist_workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _xdist_workers)))

from harness._compat import install_torchvision_shim  # noqa: E402

install_torchvision_shim()  # before any test imports torchvision (pyiqa, deformable-conv comparisons)

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Mini-set caches go to a temporary folder, never the user's ~/.cache."""
    os.environ["DACODE_BENCH_CACHE"] = str(tmp_path_factory.mktemp("dacode-bench-cache"))
    yield


@pytest.fixture()
def one_thread():
    """Pin torch to one thread (full-size model checks are steadier on a shared 2-core box)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
