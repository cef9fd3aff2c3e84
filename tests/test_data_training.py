"""Training data: the paper's mixtures and repetition factors, paired crops, 7 augmentations, worker seeding."""
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_data_fixtures import save

from harness.data import dihedral
from harness.data.catalog import column_data
from harness.data.check import Item
from harness.data.errors import DataIntegrityError
from harness.data.torch_dataset import PatchDataset
from harness.data.training import MixturePart, MixtureSampler, TrainSource, mixture_for


def _columns(*specs):
    return [column_data(SimpleNamespace(id=f"c{i}", task=t, dataset=d, sigma=s, parts=p))
            for i, (t, d, s, p) in enumerate(specs)]


THREE_TASK = _columns(("dehaze", "sots_outdoor", None, None), ("derain", "rain100l", None, None),
                      ("denoise", "bsd68", 15, None), ("denoise", "bsd68", 25, None), ("denoise", "bsd68", 50, None))
FIVE_TASK = _columns(("dehaze", "sots_outdoor", None, None), ("derain", "rain100l", None, None),
                     ("denoise", "bsd68", 25, None), ("deblur", "gopro", None, None), ("lowlight", "lol_v1", None, None))


def test_three_task_mixture_and_epoch_size():
    parts = mixture_for(THREE_TASK)
    assert [(p.key, p.repeat) for p in parts] == [
        ("reside_ots", 1), ("rain100l_train", 120), ("bsd400_wed/σ15", 3), ("bsd400_wed/σ25", 3), ("bsd400_wed/σ50", 3)]
    # with the published list sizes the epoch is PromptIR's 142,431 samples (docs/protocols.md#training-mixture)
    sizes = {"reside_ots": 72135, "rain100l_train": 200, "bsd400_wed": 5144}
    dummy = Item("x", pathlib.Path("x.png"))
    sampler = MixtureSampler([TrainSource(p, [dummy] * sizes[p.dataset_id]) for p in parts])
    assert len(sampler) == 142_431
    assert sum(len(v) for v in sampler.pairs.values()) == len(sampler)  # what a runner counting `pairs` sees


def test_five_task_mixture_adds_gopro_and_lol():
    assert {p.key: p.repeat for p in mixture_for(FIVE_TASK)} == {
        "reside_ots": 1, "rain100l_train": 120, "bsd400_wed/σ25": 3, "gopro_train": 5, "lol_v1_train": 20}
    with_all_sigmas = mixture_for(FIVE_TASK, train_sigmas=(15, 25, 50))  # AdaIR trains on all three
    assert [p.key for p in with_all_sigmas if p.task == "denoise"] == ["bsd400_wed/σ15", "bsd400_wed/σ25", "bsd400_wed/σ50"]


def test_cdd11_mixture_has_one_part_per_type():
    columns = _columns(("composite", "cdd11", None, "haze"), ("composite", "cdd11", None, "low_haze_rain"))
    assert [p.key for p in mixture_for(columns)] == ["cdd11_train/haze", "cdd11_train/low_haze_rain"]


def test_sources_are_drawn_in_proportion_to_their_epoch_share():
    a, b = Item("a", pathlib.Path("a")), Item("b", pathlib.Path("b"))
    sampler = MixtureSampler([TrainSource(MixturePart("rain100l_train", "derain", None, None, 120), [a]),
                              TrainSource(MixturePart("reside_ots", "dehaze", None, None, 1), [b] * 40)])
    draws = [sampler.entry(i)[1].image_id for i in np.random.default_rng(0).integers(len(sampler), size=4000)]
    assert draws.count("a") / len(draws) == pytest.approx(120 / 160, abs=0.03)


@pytest.fixture()
def asym(tmp_path):
    """A 32×32 image whose 8 flips/rotations all differ, as a paired (identical) input/target."""
    img = np.arange(32 * 32 * 3, dtype=np.uint32).reshape(32, 32, 3).astype(np.uint8)
    img[0, 1] = 255
    return save(tmp_path / "in.png", img), save(tmp_path / "gt.png", img), img


def test_paired_crop_and_the_seven_augmentations(asym):
    inp, tgt, img = asym
    sampler = MixtureSampler([TrainSource(MixturePart("rain100l_train", "derain", None, None, 1), [Item("x", inp, tgt)])])
    variants = {dihedral(img, k).tobytes(): k for k in range(8)}
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(120):
        degraded, clean = sampler.patch_at(0, rng, 32)
        np.testing.assert_array_equal(degraded, clean)  # input and target cropped and turned alike
        seen.add(variants[clean.tobytes()])
    assert seen == set(range(1, 8))  # PromptIR's randint(1, 7): never the identity


def test_denoising_source_adds_truncated_gaussian_noise(tmp_path):
    path = save(tmp_path / "clean.png", np.full((64, 64, 3), 128, np.uint8))
    sampler = MixtureSampler([TrainSource(MixturePart("bsd400_wed", "denoise", 25.0, None, 3), [Item("c", path)])])
    degraded, clean = sampler.sample(np.random.default_rng(1), 4, 64)
    assert (clean == 128).all()
    assert degraded.astype(float).std() == pytest.approx(25, rel=0.05)


def test_sampler_is_deterministic_and_names_small_images(tmp_path, asym):
    inp, tgt, _ = asym
    sampler = MixtureSampler([TrainSource(MixturePart("gopro_train", "deblur", None, None, 5), [Item("x", inp, tgt)])])
    one = sampler.sample(np.random.default_rng(3), 3, 16)
    two = sampler.sample(np.random.default_rng(3), 3, 16)
    np.testing.assert_array_equal(one[0], two[0])
    with pytest.raises(DataIntegrityError, match=r"in\.png: image 32×32 is smaller than the 64px training patch"):
        sampler.sample(np.random.default_rng(0), 1, 64)


def test_torch_dataset_is_independent_of_worker_count(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        items.append(Item(str(i), save(tmp_path / f"{i}.png", img), save(tmp_path / f"gt{i}.png", img)))
    sampler = MixtureSampler([TrainSource(MixturePart("lol_v1_train", "lowlight", None, None, 20), items)])
    dataset = PatchDataset(sampler, patch_size=16, seed=7)
    assert len(dataset) == 60

    def batches(workers):
        loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, num_workers=workers,
                                             generator=torch.Generator().manual_seed(0))
        return [b[0] for b in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 8
    for a, b in zip(serial, parallel):
        assert a.dtype == torch.uint8 and a.shape[1:] == (16, 16, 3)
        assert torch.equal(a, b)
    dataset.set_epoch(1)  # another epoch, other crops
    assert not np.array_equal(dataset[0][0], PatchDataset(sampler, 16, seed=7)[0][0])


def test_torch_dataset_wraps_the_mini_sampler(tmp_path, monkeypatch):
    from harness.data import mini
    from harness.data.mini import MiniPatchSampler

    monkeypatch.setenv(mini.CACHE_ENV, str(tmp_path))
    mini.clear_memory_cache()

    with pytest.raises(ValueError, match="pass length="):
        PatchDataset(MiniPatchSampler([("denoise", 25.0)]), 32)
    ds = PatchDataset(MiniPatchSampler([("composite", None, "haze_rain")]), 32, length=5)
    degraded, clean = ds[4]
    assert degraded.shape == clean.shape == (32, 32, 3)
    np.testing.assert_array_equal(ds[4][0], degraded)
