"""Peak memory of one AirNet training step with the reference and the lean deformable convolution.

    python benchmarks/bench_airnet_memory.py                # batch 2 both ops, lean at 1 and 12, timings
    python benchmarks/bench_airnet_memory.py --no-speed     # memory only
    python benchmarks/bench_airnet_memory.py --no-memory    # timings only

One step = AirNet release (``create_model("airnet")``, pure-torch DCN), random 128x128
patches, ``training_loss`` (L1 of the restorer output + 0.1 x MoCo cross-entropy),
backward.  Each measurement runs in its own fresh subprocess, one after the other
(never in parallel: the reference at batch 2 needs ~12 GB), and reports that process's
peak resident set (VmHWM from /proc/self/status, else ru_maxrss) after the step, and
the resident set just before it (model built, inputs made).  A third batch-2 run ("floor")
replaces the DCN by a plain convolution of the same weight: the memory the rest of AirNet
needs, which no deformable-convolution implementation can go below.  The lean batch 12
run is skipped when a linear extrapolation from batches 1 and 2 does not fit in
MemAvailable.  ``--malloc-mmap-threshold 131072`` repeats the figures with glibc handing
large blocks back to the system on free (less heap fragmentation in the RSS).

Timings (in this process, best of ``--repeats``, ops interleaved): one forward+backward
of the AirNet mini configuration (batch 4, 64x64, ``training_loss``) and of one
full-size DCN layer (64 -> 64 channels, 3x3, batch 2 x 128x128, random offsets up to
+-3 px); reported as the ratio lean / reference.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def _peak_and_current_kib() -> tuple[int, int]:
    """(VmHWM, VmRSS) in KiB; ru_maxrss (KiB on Linux) when /proc is unavailable."""
    try:
        fields = dict(line.split(":", 1) for line in pathlib.Path("/proc/self/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def _child(memory: str, batch: int, patch: int, threads: int) -> None:
    import torch
    import torch.nn.functional as F

    import baselines
    from baselines.deform_conv import memory_mode

    torch.set_num_threads(threads)
    if memory == "floor":  # DCN replaced by a plain convolution: what the rest of AirNet needs
        import baselines.airnet as airnet

        def plain_conv(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None, backend=None):
            return F.conv2d(x, weight, bias, stride, padding, dilation) + 0 * offset[:, :1] + 0 * mask[:, :1]

        airnet.deform_conv2d = plain_conv
    torch.manual_seed(0)
    # "reference" is today's step before this work (reference op, every activation kept); "lean-op" the
    # lean op alone; "lean" what AirNet trains with now: lean op + activation checkpointing of the groups
    model = baselines.create_model("airnet", dcn_backend="torch", activation_checkpointing=memory == "lean").train()
    degraded, clean = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)
    before_peak, before = _peak_and_current_kib()
    t0 = time.perf_counter()
    with memory_mode("reference" if memory == "reference" else "lean"):
        loss = model.training_loss(degraded, clean)
        loss.backward()
    seconds = time.perf_counter() - t0
    peak, _ = _peak_and_current_kib()
    print(json.dumps(dict(memory=memory, batch=batch, peak_kib=peak, before_kib=before,
                          before_peak_kib=before_peak, seconds=seconds, loss=loss.item())))


def measure(memory: str, batch: int, patch: int, threads: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", memory, str(batch), "--patch", str(patch), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mem_available_kib() -> int:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def _gib(kib: float) -> str:
    return f"{kib / 2**20:6.2f} GiB"


def _row(r: dict) -> str:
    return (f"{r['memory']:9s} batch {r['batch']:2d}: peak RSS {_gib(r['peak_kib'])} "
            f"(before the step {_gib(r['before_kib'])}), step {r['seconds']:6.1f} s, loss {r['loss']:.5f}")


def memory_report(patch: int, threads: int, big_batch: int, floor: bool, mmap_threshold: int | None) -> None:
    env = dict(os.environ)
    if mmap_threshold is not None:  # glibc: blocks above this size come from mmap and go back on free
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    allocator = f"MALLOC_MMAP_THRESHOLD_={mmap_threshold}" if mmap_threshold is not None else "default allocator settings"
    print(f"AirNet release, one training step (training_loss + backward), {patch}x{patch}, "
          f"{threads} thread(s), {allocator}")
    ref = measure("reference", 2, patch, threads, env)
    print(_row(ref), flush=True)
    op_only = measure("lean-op", 2, patch, threads, env)
    print(_row(op_only) + "  <- lean op, no activation checkpointing", flush=True)
    lean2 = measure("lean", 2, patch, threads, env)
    print(_row(lean2), flush=True)
    print(f"batch 2 peak RSS lean / reference = {lean2['peak_kib'] / ref['peak_kib']:.3f} "
          f"(reference / lean = {ref['peak_kib'] / lean2['peak_kib']:.2f}x)", flush=True)
    if floor:
        low = measure("floor", 2, patch, threads, env)
        print(_row(low) + "  <- DCN replaced by a plain conv", flush=True)
    lean1 = measure("lean", 1, patch, threads, env)
    print(_row(lean1), flush=True)
    per_image = max(lean2["peak_kib"] - lean1["peak_kib"], 0)
    predicted = lean2["peak_kib"] + (big_batch - 2) * per_image
    available = _mem_available_kib()
    if predicted < 0.8 * available:
        print(_row(measure("lean", big_batch, patch, threads, env)), flush=True)
    else:
        print(f"lean      batch {big_batch:2d}: skipped, extrapolated peak {_gib(predicted)} "
              f"> 80% of MemAvailable {_gib(available)}")


def speed_report(repeats: int, threads: int) -> None:
    import torch

    import baselines
    from baselines.deform_conv import deform_conv2d_torch, memory_mode

    torch.set_num_threads(threads)

    def best(fns: dict) -> dict:
        times = {k: [] for k in fns}
        for _ in range(repeats):  # interleaved so that load changes hit both
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        return {k: min(v) for k, v in times.items()}

    torch.manual_seed(0)
    model = baselines.create_model("airnet", dcn_backend="torch", **baselines.mini_config("airnet")).train()
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)

    def mini_step(memory):
        def step():
            model.zero_grad(set_to_none=True)
            with memory_mode("reference" if memory == "reference" else "lean"):
                model.training_loss(x, y).backward()
        return step

    g = torch.Generator().manual_seed(0)
    inp = torch.randn(2, 64, 128, 128, generator=g, requires_grad=True)
    weight = (0.05 * torch.randn(64, 64, 3, 3, generator=g)).requires_grad_(True)
    offset = (3.0 * (2 * torch.rand(2, 18, 128, 128, generator=g) - 1)).requires_grad_(True)
    mask = torch.rand(2, 9, 128, 128, generator=g).requires_grad_(True)

    def layer_step(memory):
        def step():
            for t in (inp, weight, offset, mask):
                t.grad = None
            deform_conv2d_torch(inp, offset, weight, None, 1, 1, 1, mask, memory=memory).sum().backward()
        return step

    print(f"forward+backward time, best of {repeats}, {threads} thread(s)")
    for label, make in (("AirNet mini, batch 4 x 64x64, training_loss", mini_step),
                        ("one DCN layer 64->64 3x3, batch 2 x 128x128", layer_step)):
        make("lean")()  # warm-up
        make("reference")()
        t = best({"reference": make("reference"), "lean": make("lean")})
        print(f"{label:46s} reference {t['reference'] * 1e3:8.1f} ms  lean {t['lean'] * 1e3:8.1f} ms  "
              f"lean/reference {t['lean'] / t['reference']:.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("MEMORY", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--big-batch", type=int, default=12, help="lean-only batch (the paper's batch size)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-floor", action="store_true", help="skip the run with the DCN replaced by a plain conv")
    ap.add_argument("--malloc-mmap-threshold", type=int, default=None, metavar="BYTES",
                    help="set glibc's MALLOC_MMAP_THRESHOLD_ in the measured processes")
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.patch, args.threads)
        return
    if not args.no_memory:
        memory_report(args.patch, args.threads, args.big_batch, not args.no_floor, args.malloc_mmap_threshold)
    if not args.no_speed:
        speed_report(args.repeats, args.threads)


if __name__ == "__main__":
    main()
