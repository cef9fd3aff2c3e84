import os

# Tests must behave the same on every machine: two CPU threads, no GPU surprises.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import harness  # noqa: E402,F401  (installs the torchvision shim before anything imports it)
