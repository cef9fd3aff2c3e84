"""dacode-bench: the benchmarking and reproducibility harness for all-in-one image restoration."""
import os

# OpenMP threads that spin while waiting collapse to a fraction of their speed when another
# process shares the cores (measured here: 2-4x slower training steps on a 2-core machine
# with one other busy process); passive waiting costs little when the machine is quiet.
# Must be set before torch is imported; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from harness._compat import install_torchvision_shim  # noqa: E402

install_torchvision_shim()

__version__ = "0.1.0"
