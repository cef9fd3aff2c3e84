import os

# Tests must behave the same on every machine: two CPU threads, no GPU surprises.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import harness  # noqa: E402,F401  (installs the torchvision shim before anything imports it)

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Mini-set caches go to a temporary folder, never the user's ~/.cache."""
    os.environ["DACODE_BENCH_CACHE"] = str(tmp_path_factory.mktemp("dacode-bench-cache"))
    yield
