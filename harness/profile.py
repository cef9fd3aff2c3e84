"""Model profiling: parameters, FLOPs/MACs, latency and peak memory, with the conditions recorded.

Conventions (docs/protocols.md#flops-and-macs):
- FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add
  as 2 FLOPs; MACs = FLOPs / 2 (what fvcore/thop report and many papers call "FLOPs").
- On the CPU, fused attention runs as ``aten._scaled_dot_product_flash_attention_for_cpu``,
  for which torch has no formula (it would count 0). We register the standard SDPA formula
  for it: 4·B·H·Lq·Lk·D (two batched matmuls), the same count torch uses on the GPU.
- FFTs (``aten._fft_c2c`` / ``_fft_r2c`` / ``_fft_c2r``) also have no torch formula. We use
  FFTW's benchmark convention (benchFFT "mflops"): a complex transform of N points costs
  5·N·log2(N) real FLOPs, a real-input or real-output transform half that, 2.5·N·log2(N), N
  being the real signal's size; N is the product of the transformed sizes (any N, log2 not
  rounded), times the number of such transforms. The 1/N normalisation scaling is not counted.
- Latency: ``warmup`` untimed calls, then ``iters`` timed calls; median and p90. GPU timing
  uses CUDA events after a synchronize; CPU timing uses ``time.perf_counter``.
- Peak memory: GPU ``torch.cuda.max_memory_allocated`` during one forward; CPU the peak
  resident set during one forward above the resident set before it (Linux: the peak mark is
  reset through ``/proc/self/clear_refs`` first, so earlier work does not hide it).
"""
from __future__ import annotations

import math
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count

_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _register_cpu_sdpa_formula() -> None:
    if _CPU_FLASH is None:
        return
    try:
        @register_flop_formula(_CPU_FLASH)
        def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)
    except (RuntimeError, ValueError):  # already registered (module reloaded)
        pass




def fft_flops(shape, dims, complex_input: bool) -> int:
    """FLOPs of the FFTs over ``dims`` of a signal of ``shape`` (the real signal's shape for r2c/c2r).

    5·N·log2(N) per complex transform of N = prod(shape[dims]) points, 2.5·N·log2(N) per
    real-input or real-output one; numel(shape) / N transforms.
    """
    shape = list(shape)
    n = math.prod(shape[d % len(shape)] for d in dims) if shape else 1
    if n <= 1:
        return 0
    per_point = 5.0 if complex_input else 2.5
    return int(round(per_point * math.prod(shape) * math.log2(n)))


def _fft_c2c_flops(self_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return fft_flops(self_shape, dim, complex_input=True)


def _fft_r2c_flops(self_shape, dim, *args, out_shape=None, **kwargs) -> int:  # input is the real signal
    return fft_flops(self_shape, dim, complex_input=False)


def _fft_c2r_flops(self_shape, dim, *args, out_shape=None, **kwargs) -> int:  # output is the real signal
    return fft_flops(out_shape, dim, complex_input=False)


def _register_fft_formulas() -> None:
    for name, formula in (("_fft_c2c", _fft_c2c_flops), ("_fft_r2c", _fft_r2c_flops), ("_fft_c2r", _fft_c2r_flops)):
        op = getattr(torch.ops.aten, name, None)
        if op is None:
            continue
        try:
            register_flop_formula(op)(formula)
        except (RuntimeError, ValueError):  # already registered (module reloaded)
            pass




@dataclass
class ProfileReport:
    method: str
    overrides: dict[str, Any]
    input_shape: list[int]
    dtype: str
    device: str
    params_total: int
    params_trainable: int
    flops: int | None = None
    macs: int | None = None
    flops_by_op: dict[str, int] = field(default_factory=dict)
    latency_ms_median: float | None = None
    latency_ms_p90: float | None = None
    latency_iters: int = 0
    latency_warmup: int = 0
    timer: str = ""
    peak_memory_bytes: int | None = None
    memory_method: str = ""
    # read when the report is made (not when this module is imported)
    torch_version: str = field(default_factory=lambda: torch.__version__)
    cuda_version: str | None = field(default_factory=lambda: torch.version.cuda)
    python: str = field(default_factory=platform.python_version)
    threads: int = field(default_factory=torch.get_num_threads)

    def as_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) learnable parameters; buffers (e.g. AirNet's MoCo queue) excluded."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def format_params(n: int) -> str:
    """As the paper prints them: '29M', '12.5M', '0.21M'; below 0.1M in thousands ('12.3K', '850')."""
    if n < 100_000:
        return f"{n / 1e3:.1f}K" if n >= 1000 else str(n)
    millions = n / 1e6
    if millions >= 10:
        return f"{millions:.0f}M" if abs(millions - round(millions)) < 0.05 else f"{millions:.1f}M"
    if millions >= 1:
        return f"{millions:.1f}M"
    return f"{millions:.2f}M"


_FORMULAS_REGISTERED = False


def register_flop_formulas() -> None:
    """Teach torch's flop counter the ops it has no formula for (once, on the first count)."""
    global _FORMULAS_REGISTERED
    if not _FORMULAS_REGISTERED:
        _register_cpu_sdpa_formula()
        _register_fft_formulas()
        _FORMULAS_REGISTERED = True


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """Forward FLOPs (2 per multiply-add) and their split by aten op."""
    register_flop_formulas()
    mode = FlopCounterMode(display=False)
    with torch.no_grad(), mode:
        model(x)
    by_op: dict[str, int] = {}
    for op, count in mode.get_flop_counts().get("Global", {}).items():
        by_op[str(op)] = int(count)
    return int(mode.get_total_flops()), by_op


def measure_latency(model: torch.nn.Module, x: torch.Tensor, *, warmup: int = 2, iters: int = 10) -> tuple[float, float, str]:
    """(median ms, p90 ms, timer description)."""
    times: list[float] = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
            for _ in range(iters):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                torch.cuda.synchronize(x.device)
                times.append(start.elapsed_time(end))
            timer = "cuda events, synchronized"
        else:
            for _ in range(iters):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
            timer = "time.perf_counter"
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return statistics.median(times), p90, timer


def _proc_status_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _release_free_heap() -> None:
    """Make freed memory leave the resident set, so RSS tracks live tensors.

    glibc raises its mmap threshold after large frees and then keeps freed blocks in the heap;
    a fixed 64 KiB threshold sends tensor-sized blocks to mmap (returned on free), and
    malloc_trim hands back what the heap already holds.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 64 * 1024)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_peak_memory(model: torch.nn.Module, x: torch.Tensor) -> int | None:
    """Bytes by which one forward raises the resident set above where it started.

    Linux lets a process reset its peak-RSS mark (``echo 5 > /proc/self/clear_refs``), so the
    peak is measured for this forward alone. Returns None where that is not available.
    """
    _release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        base = _proc_status_kib("VmRSS")
    except OSError:
        return None
    with torch.no_grad():
        model(x)
    return max(0, _proc_status_kib("VmHWM") - base) * 1024


def profile_method(
    method: str,
    overrides: dict[str, Any] | None = None,
    *,
    size: tuple[int, int] = (256, 256),
    batch: int = 1,
    device: str = "cpu",
    warmup: int = 2,
    iters: int = 10,
    measure_memory: bool = True,
) -> ProfileReport:
    from harness.methods import build_model

    overrides = dict(overrides or {})
    torch.manual_seed(0)
    model = build_model(method, overrides).eval().to(device)
    shape = [batch, 3, size[0], size[1]]
    x = torch.rand(*shape, device=device)
    total, trainable = count_parameters(model)
    report = ProfileReport(method, overrides, shape, str(x.dtype).replace("torch.", ""),
                           torch.cuda.get_device_name(x.device) if x.is_cuda else "cpu", total, trainable)
    if measure_memory and not x.is_cuda:  # first, before warm-ups fill the allocator's caches
        report.peak_memory_bytes = cpu_peak_memory(model, x)
        report.memory_method = ("peak RSS above the start of one forward (/proc/self/clear_refs)"
                                if report.peak_memory_bytes is not None else "unavailable on this OS")
    report.flops, report.flops_by_op = count_flops(model, x)
    report.macs = report.flops // 2
    if iters > 0:
        report.latency_ms_median, report.latency_ms_p90, report.timer = measure_latency(model, x, warmup=warmup, iters=iters)
        report.latency_iters, report.latency_warmup = iters, warmup
    if measure_memory and x.is_cuda:
        torch.cuda.reset_peak_memory_stats(x.device)
        base = torch.cuda.memory_allocated(x.device)
        with torch.no_grad():
            model(x)
        torch.cuda.synchronize(x.device)
        report.peak_memory_bytes = torch.cuda.max_memory_allocated(x.device) - base
        report.memory_method = "torch.cuda.max_memory_allocated above the resident model"
    return report


def format_report(r: ProfileReport) -> str:
    from tabulate import tabulate

    def g(v, unit=1e9, suffix="G"):
        return "-" if v is None else f"{v / unit:.2f}{suffix}"

    rows = [
        ("method", f"{r.method} {r.overrides or ''}".strip()),
        ("input", f"{'×'.join(map(str, r.input_shape))} {r.dtype} on {r.device}"),
        ("parameters", f"{r.params_total:,} total, {r.params_trainable:,} trainable"),
        ("FLOPs / MACs", f"{g(r.flops)} / {g(r.macs)}  (FLOPs = 2 × multiply-adds)"),
        ("latency", "-" if r.latency_ms_median is None else
         f"median {r.latency_ms_median:.1f} ms, p90 {r.latency_ms_p90:.1f} ms ({r.latency_iters} iters after {r.latency_warmup} warm-up, {r.timer})"),
        ("peak memory", "-" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.1f} MiB ({r.memory_method})"),
        ("versions", f"torch {r.torch_version}, CUDA {r.cuda_version}, Python {r.python}, {r.threads} threads"),
    ]
    return tabulate(rows, tablefmt="plain")
