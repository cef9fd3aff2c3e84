"""Fail fast when a CUDA build of torch slipped onto a machine without a usable GPU."""
import sys

import torch

if torch.version.cuda is not None and not torch.cuda.is_available():
    sys.exit(
        f"torch {torch.__version__} is a CUDA build but this machine has no usable GPU: reinstall with the "
        "CPU pins (delete .nox/dacode-env and rerun), or set DACODE_TORCH_SPEC to the build that fits this machine."
    )
print(f"torch {torch.__version__} (cuda: {torch.version.cuda}, gpu available: {torch.cuda.is_available()})")
