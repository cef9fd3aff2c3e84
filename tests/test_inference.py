"""Evaluation at real sizes: streamed batches, tiles as a recorded policy, out-of-memory fallbacks,
and stochastic models seeded per image."""
import numpy as np
import pytest
import torch

from harness.data import Pair, TestItem, TestSet
from harness.evaluate import EvalLog, batches, evaluate, restore, tiled_forward
from harness.suite import InferencePolicy


class Local(torch.nn.Module):
    """Three 3×3 convolutions: each output pixel sees 3 pixels around it (receptive radius 3)."""

    pad_multiple = 1

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(3)])

    def forward(self, x):
        return x + 0.1 * self.body(x)


def test_tiles_equal_the_whole_image_for_a_local_model():
    x = torch.rand(2, 3, 70, 90)
    with torch.no_grad():
        whole = Local()(x)
        tiled = tiled_forward(Local(), x, tile=32, overlap=8)  # the 4px band each tile gives up ≥ radius 3
        too_little = tiled_forward(Local(), x, tile=32, overlap=2)  # 1px band < radius 3: seams show
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert not torch.allclose(too_little, whole, atol=1e-4)


def test_tiles_change_a_global_model():
    """Mini DACode's codebook and MDTA attention see the whole image: tiles give other numbers."""
    import dacode

    torch.manual_seed(0)
    model = dacode.create_model("dacode", **dacode.MINI_CONFIG).eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        whole = model(x)
        tiled = tiled_forward(model, x, tile=48, overlap=16)
    assert tiled.shape == whole.shape and (tiled - whole).abs().max() > 1e-3


def test_batches_follow_a_pixel_budget_and_keep_sizes_apart():
    items = [TestItem(f"a{i}", (100, 100), lambda: None) for i in range(5)]
    items += [TestItem(f"b{i}", (50, 40), lambda: None) for i in range(3)]
    got = [[i.image_id for i in b] for b in batches(items, pixel_budget=2 * 100 * 100)]
    assert got == [["a0", "a1"], ["a2", "a3"], ["a4"], ["b0", "b1", "b2"]]
    assert [len(b) for b in batches(items[:2], pixel_budget=1)] == [1, 1]  # at least one image


def _set(n=4, size=(24, 32), loads=None):
    rng = np.random.default_rng(0)
    pairs = {f"img{i}": Pair(f"img{i}", rng.integers(0, 255, (*size, 3), dtype=np.uint8),
                             rng.integers(0, 255, (*size, 3), dtype=np.uint8)) for i in range(n)}

    def loader(i):
        def load():
            if loads is not None:
                loads.append(i)
            return pairs[i]
        return load

    return TestSet("c", "d", items=[TestItem(i, size, loader(i)) for i in pairs])


def test_evaluation_loads_one_batch_at_a_time():
    loads = []
    ts = _set(n=6, loads=loads)
    seen = []

    class Spy(Local):
        def forward(self, x):
            seen.append(len(loads))
            return super().forward(x)

    rows = evaluate(Spy(), ts, ("psnr_y",), InferencePolicy(pixel_budget=2 * 24 * 32), method="spy")
    assert len(rows) == 6 and seen == [2, 4, 6]  # images are read batch by batch, not all first


class OutOfMemoryOverLimit(Local):
    """Raises the allocator's out-of-memory error above a batch size or an image size."""

    def __init__(self, max_batch=8, max_side=10_000):
        super().__init__()
        self.max_batch, self.max_side = max_batch, max_side

    def forward(self, x):
        if x.shape[0] > self.max_batch or max(x.shape[-2:]) > self.max_side:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().forward(x)


def test_out_of_memory_halves_the_batch_then_tiles_and_says_so():
    x = torch.rand(4, 3, 300, 300)
    with torch.no_grad():
        whole = Local()(x)
    log = EvalLog()
    y = restore(OutOfMemoryOverLimit(max_batch=1), x, InferencePolicy(), log, "method 'M', column 'c'")
    assert torch.allclose(y, whole, atol=1e-6)
    assert log.events[0] == "method 'M', column 'c': out of GPU memory at batch 4; retried as batches of 2"
    log = EvalLog()
    y = restore(OutOfMemoryOverLimit(max_batch=1, max_side=260), x[:1], InferencePolicy(), log, "w")
    assert torch.allclose(y, whole[:1], atol=1e-6)  # a local model: 256px tiles, overlap 32, are exact
    assert log.events == ["w: out of GPU memory on the whole image; restored in 256px tiles (overlap 32px) instead"]
    with pytest.raises(Exception, match="out of GPU memory even in 128px tiles"):
        restore(OutOfMemoryOverLimit(max_batch=1, max_side=100), x[:1], InferencePolicy(), EvalLog(), "w")


def test_a_stochastic_model_is_seeded_per_image_not_by_file_order():
    import baselines

    torch.manual_seed(0)
    model = baselines.create_model("moce_ir", **baselines.mini_config("moce_ir")).eval()
    ts = _set(n=3, size=(32, 32))
    policy = InferencePolicy(noise_seeds=3)
    rows = evaluate(model, ts, ("psnr_y",), policy, method="MoCE-IR", seed=0)
    reverse = TestSet("c", "d", items=list(reversed(ts.items)))
    again = evaluate(model, reverse, ("psnr_y",), policy, method="MoCE-IR", seed=0)
    key = lambda r: (r["image_id"], r["noise_seed"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(again, key=key)  # the same draw per image, whatever the order
    assert len(rows) == 9 and {r["noise_seed"] for r in rows} == {0, 1, 2}
    by_seed = {k: [r["psnr_y"] for r in rows if r["noise_seed"] == k] for k in range(3)}
    assert by_seed[0] != by_seed[1]  # the noise moves the numbers
    model.router_noise = False  # without the noise the K draws agree
    quiet = evaluate(model, ts, ("psnr_y",), policy, method="MoCE-IR", seed=0)
    assert len({r["psnr_y"] for r in quiet if r["image_id"] == "img0"}) == 1


def test_noise_seed_cells_show_mean_and_spread():
    from harness.runner import aggregate
    from harness.suite import load_suite

    suite = load_suite("table1_three_task")
    rows = {"M": {c.id: [{"image_id": f"i{i}", "noise_seed": k, "psnr_y": 30.0 + k + i, "ssim_y": 0.9}
                         for i in range(2) for k in range(3)] for c in suite.columns}}
    cells, averages = aggregate(suite, [suite.methods[0].model_copy(update={"name": "M"})], rows)
    cell = cells["M"]["sots"]
    # per seed k the column mean is 30.5 + k: mean 31.5, sample std 1.0 over the three seeds
    assert cell.values["psnr_y"] == pytest.approx(31.5) and cell.spread["psnr_y"] == pytest.approx(1.0)
    assert cell.n_seeds == 3 and cell.n_images == 2 and averages["M"]["psnr_y"] == pytest.approx(31.5)
