"""dacode-bench: the benchmarking and reproducibility harness for all-in-one image restoration."""
from harness._compat import install_torchvision_shim

install_torchvision_shim()

__version__ = "0.1.0"
