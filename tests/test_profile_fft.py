"""FFT FLOP counting against hand counts.

Convention (harness/profile.py): 5·N·log2(N) real FLOPs per complex transform of N points,
2.5·N·log2(N) per real-input (r2c) or real-output (c2r) one, N = product of the transformed sizes.
"""
import math

import torch

from harness.profile import count_flops, fft_flops


class Spectral(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_formula_by_hand():
    assert fft_flops((2, 3, 8, 16), (2, 3), True) == 5 * (2 * 3 * 8 * 16) * 7  # N = 128
    assert fft_flops((2, 3, 8, 16), (-2, -1), True) == 26_880
    assert fft_flops((4, 32), (1,), False) == 2.5 * 128 * 5  # four real 32-point transforms
    assert fft_flops((5, 1), (1,), True) == 0  # a 1-point transform is free
    assert fft_flops((3, 6), (1,), True) == round(5 * 18 * math.log2(6))  # non-powers of two: log2 not rounded


def test_complex_fft2_and_inverse():
    # a real input to fft2 is promoted to complex: one _fft_c2c each way
    x = torch.rand(2, 3, 8, 16)
    model = Spectral(lambda t: torch.fft.ifft2(torch.fft.fft2(t, norm="forward"), norm="forward").abs())
    flops, by_op = count_flops(model, x)
    per_transform = 5 * (2 * 3 * 128) * 7  # 6 transforms of 128 points, log2(128) = 7
    assert by_op["aten._fft_c2c"] == 2 * per_transform == 53_760
    assert flops == by_op["aten._fft_c2c"]  # abs and the promotion are not counted


def test_real_transforms_count_half():
    x = torch.rand(1, 4, 16, 32)
    model = Spectral(lambda t: torch.fft.irfft2(torch.fft.rfft2(t), s=(16, 32)))
    flops, by_op = count_flops(model, x)
    real_2d = 2.5 * (4 * 512) * 9  # 4 real transforms of 16 x 32 = 512 points
    assert by_op["aten._fft_r2c"] == real_2d == 46_080
    assert by_op["aten._fft_c2r"] == real_2d  # counted on the real output's size
    assert flops == 2 * 46_080


def test_one_dimensional_real_input_fft():
    # torch.fft.fft of a real tensor is a two-sided r2c over the last axis
    x = torch.rand(3, 10, 64)
    _, by_op = count_flops(Spectral(lambda t: torch.fft.fft(t)), x)
    assert by_op == {"aten._fft_r2c": 2.5 * (3 * 10 * 64) * 6}
