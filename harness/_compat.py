"""Import-time compatibility with the CPU torch build used on GPU-less machines.

Why: the only torchvision that pairs with torch 2.13.0 is a CUDA build whose C++
ops cannot register beside the CPU torch (``operator torchvision::nms does not
exist``). pyiqa imports torchvision, but its PSNR/SSIM only use the pure-Python
parts. Pre-registering an empty ``torchvision._meta_registrations`` skips the
fake-kernel registration that fails, so ``import torchvision`` succeeds and the
C++ ops raise a clear error only if something actually calls them.
Facts: docs/dependencies.md.
"""
from __future__ import annotations

import sys
import types


def install_torchvision_shim() -> None:
    """Make ``import torchvision`` work beside a CPU-only torch (idempotent)."""
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules.setdefault(
            "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
        )
        import torchvision  # noqa: F401
    except ImportError:
        # torchvision is optional for the models; pyiqa will report it if needed.
        pass
