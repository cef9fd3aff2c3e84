"""Profiling against hand counts: parameters, FLOPs (including fused attention), latency, memory."""
import pytest
import torch
import torch.nn.functional as F

from harness import methods
from harness.profile import count_flops, count_parameters, cpu_peak_memory, measure_latency, profile_method


class ConvAttention(torch.nn.Module):
    """A 3×3 conv (8→16 channels, no bias) then 2-head SDPA over the pixels as tokens."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.frozen = torch.nn.Parameter(torch.zeros(5), requires_grad=False)
        self.register_buffer("queue", torch.zeros(100))

    def forward(self, x):
        y = self.conv(x)  # B×16×H×W
        b, c, h, w = y.shape
        q = y.flatten(2).transpose(1, 2).reshape(b, h * w, 2, c // 2).transpose(1, 2)  # B×2×L×8
        return F.scaled_dot_product_attention(q, q, q)


def test_parameter_counts_exclude_buffers():
    total, trainable = count_parameters(ConvAttention())
    assert (total, trainable) == (16 * 8 * 9 + 5, 16 * 8 * 9)


def test_flops_match_hand_count_including_cpu_attention():
    b, h, w = 2, 6, 5
    x = torch.rand(b, 8, h, w)
    flops, by_op = count_flops(ConvAttention(), x)
    conv = 2 * 16 * 8 * 9 * h * w * b
    length, head_dim, heads = h * w, 8, 2
    attention = 4 * b * heads * length * length * head_dim  # QK^T and AV, 2 FLOPs per MAC
    assert flops == conv + attention


def test_cpu_flash_attention_kernel_has_a_formula():
    """torch has no FLOP formula for the CPU flash kernel (it counts 0); ours is registered."""
    from torch.utils.flop_counter import FlopCounterMode

    q = torch.rand(2, 3, 10, 4)
    k = torch.rand(2, 3, 7, 4)
    mode = FlopCounterMode(display=False)
    with mode:
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, k)
    assert mode.get_total_flops() == 4 * 2 * 3 * 10 * 7 * 4


def test_latency_statistics():
    median, p90, timer = measure_latency(torch.nn.Identity(), torch.zeros(1), warmup=1, iters=5)
    assert 0 <= median <= p90 and timer == "time.perf_counter"


class Allocates(torch.nn.Module):
    def __init__(self, mib: int):
        super().__init__()
        self.numel = mib * 2**20 // 4

    def forward(self, x):
        big = torch.ones(self.numel)  # written, so the pages are resident
        return x + big[:1]


def test_cpu_peak_memory_sees_a_known_allocation():
    peak = cpu_peak_memory(Allocates(96), torch.zeros(1))
    if peak is None:
        pytest.skip("this OS cannot reset the peak-RSS mark")
    assert 90 * 2**20 <= peak <= 140 * 2**20


def test_profile_method_end_to_end(monkeypatch):
    monkeypatch.setitem(methods.BUILTIN, "convattn", methods.MethodSpec("convattn", "test", lambda **kw: _RGB()))
    report = profile_method("convattn", size=(8, 8), iters=2, warmup=1)
    assert report.params_total == 3 * 3 * 9
    assert report.flops == 2 * 3 * 3 * 9 * 64 and report.macs == report.flops // 2
    assert report.input_shape == [1, 3, 8, 8] and report.device == "cpu" and report.dtype == "float32"
    assert report.torch_version == torch.__version__


class _RGB(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(x)
