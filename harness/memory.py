"""Will training fit? Measure a training step's peak memory before training, extrapolate, refuse early.

A long run that the kernel kills at its first full batch loses everything and says nothing. So,
before a row trains, one training step of a copy of the model is measured at micro-batch 1 and
(when the configured micro-batch is larger) 2: the peak above the memory in use before the step
(CUDA ``max_memory_allocated``; on the CPU the process's peak resident set, its mark reset
through ``/proc/self/clear_refs``). The peak grows linearly with the micro-batch, so

    need(m) = peak(1) + (m − 1)·(peak(2) − peak(1)) + 3 × parameter bytes

(the last term: the real model's gradients and two AdamW moments, which the copy already held
when it was measured). ``need`` is compared with what the device has free (CUDA
``mem_get_info``; the CPU's ``MemAvailable``, capped by a cgroup limit); a run that would not
fit is refused with the estimate, the memory available and the largest micro-batch that fits.
The probe copies the model and restores torch's RNG, so it changes nothing the run computes.
"""
from __future__ import annotations

import copy
import pathlib
from dataclasses import dataclass

import torch

from harness.errors import HarnessError

SAFETY = 0.9  # use at most this share of the memory available
GiB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    device: str
    micro_batch: int
    need_bytes: int
    per_sample_bytes: int
    available_bytes: int | None
    fitting_micro_batch: int  # largest micro-batch within SAFETY × available (0: not even one sample)

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.need_bytes <= SAFETY * self.available_bytes

    def describe(self) -> str:
        avail = "unknown" if self.available_bytes is None else f"{self.available_bytes / GiB:.1f} GiB"
        return (f"about {self.need_bytes / GiB:.2f} GiB for micro-batches of {self.micro_batch} "
                f"({self.per_sample_bytes / GiB:.3f} GiB per sample), {avail} available on {self.device}")


def _cpu_available() -> int | None:
    avail = None
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = pathlib.Path(limit_file).read_text().strip()
            usage = int(pathlib.Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            room = int(limit) - usage
            avail = room if avail is None else min(avail, room)
        break
    return avail


def available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return _cpu_available()


def _trim_heap() -> None:
    """Hand freed heap memory back to the system so the resident set tracks live tensors.

    Only ``malloc_trim``: changing malloc's mmap threshold (as the one-shot ``profile`` command
    does) would stay in force for the whole training run and turn every large allocation into a
    system call."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _step_peak(model, loss_fn, optimiser, batch: int, patch: int, device: torch.device, label: str = "") -> int | None:
    """Bytes one training step of ``batch`` samples raises memory above where it started."""
    from harness.profile import _proc_status_kib
    from harness.train import require_grad

    x = torch.rand(batch, 3, patch, patch, device=device)
    y = torch.rand(batch, 3, patch, patch, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        _trim_heap()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            base = _proc_status_kib("VmRSS") * 1024
        except OSError:
            return None
    loss = loss_fn(model, x, y)
    require_grad(loss, label)
    loss.backward()
    optimiser.step()
    optimiser.zero_grad(set_to_none=False)  # keep the gradients allocated: the real loop holds them too
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    return max(0, _proc_status_kib("VmHWM") * 1024 - base)


def estimate_training_memory(model: torch.nn.Module, *, patch_size: int, micro_batch: int,
                             device: str | torch.device = "cpu", label: str = "") -> MemoryEstimate | None:
    """Measure and extrapolate (see the module docstring); None where the platform cannot measure."""
    from harness.train import training_loss

    device = torch.device(device)
    probe = copy.deepcopy(model).to(device).train()
    optimiser = torch.optim.AdamW(probe.parameters(), lr=0.0)
    param_bytes = sum(p.numel() * p.element_size() for p in probe.parameters() if p.requires_grad)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            # a first step allocates the gradients and the optimiser's moments, so the measured
            # steps see only what grows with the batch
            _step_peak(probe, training_loss, optimiser, 1, patch_size, device, label)
            one = _step_peak(probe, training_loss, optimiser, 1, patch_size, device, label)
            two = _step_peak(probe, training_loss, optimiser, 2, patch_size, device, label) if micro_batch > 1 else None
    finally:
        del probe, optimiser
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if one is None:
        return None
    per_sample = max(0, (two - one)) if two is not None else one
    overhead = 3 * param_bytes

    def need(m: int) -> int:
        return one + (m - 1) * per_sample + overhead

    avail = available_bytes(device)
    fitting = micro_batch
    if avail is not None:
        fitting = 0
        for m in range(micro_batch, 0, -1):
            if need(m) <= SAFETY * avail:
                fitting = m
                break
    return MemoryEstimate(str(device), micro_batch, need(micro_batch), per_sample, avail, fitting)


def check_training_memory(model: torch.nn.Module, *, label: str, patch_size: int, micro_batch: int,
                          batch_size: int, device: str | torch.device = "cpu") -> MemoryEstimate | None:
    """Refuse, with one line, a training run that would run out of memory."""
    estimate = estimate_training_memory(model, patch_size=patch_size, micro_batch=micro_batch, device=device,
                                        label=label)
    if estimate is None or estimate.fits:
        return estimate
    if estimate.fitting_micro_batch == 0:
        advice = "not even one sample fits: lower patch_size or use a machine with more memory"
    else:
        advice = (f"use --micro-batch {estimate.fitting_micro_batch} (or train.micro_batch: "
                  f"{estimate.fitting_micro_batch}): the global batch of {batch_size} is then accumulated")
    raise HarnessError(f"training '{label}' would run out of memory: it needs {estimate.describe()}; {advice}")
