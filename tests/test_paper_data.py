"""The paper profile on a small fixture laid out like the PromptIR/AirNet data folders."""
import json
import pathlib

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from harness import methods
from harness.data import paper
from harness.errors import DataMissingError, HarnessError
from harness.runner import run_suite
from harness.suite import SUITES_DIR


def _save(path: pathlib.Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def _img(rng, h=40, w=52):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def data_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in (1, 2):
        _save(root / f"test/dehaze/input/000{i}_0.8_0.2.png", _img(rng))
        _save(root / f"test/dehaze/target/000{i}.png", _img(rng))
        _save(root / f"test/derain/Rain100L/input/{i}.png", _img(rng))
        _save(root / f"test/derain/Rain100L/target/{i}.png", _img(rng))
        _save(root / f"test/denoise/bsd68/{i}.png", _img(rng))
        _save(root / f"Train/Denoise/{i}.png", _img(rng))
        _save(root / f"Train/Derain/rainy/rain-{i}.png", _img(rng))
        _save(root / f"Train/Derain/gt/norain-{i}.png", _img(rng))
        _save(root / f"Train/Dehaze/synthetic/part1/002{i}_0.8_0.1.png", _img(rng))
        _save(root / f"Train/Dehaze/original/002{i}.png", _img(rng))
    return root


class TinyNet(torch.nn.Module):
    pad_multiple = 1

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


@pytest.fixture()
def tiny_suite(tmp_path, monkeypatch):
    monkeypatch.setitem(methods.BUILTIN, "tiny", methods.MethodSpec("tiny", "test", lambda **kw: TinyNet()))
    doc = yaml.safe_load((SUITES_DIR / "table1_three_task.yaml").read_text())
    doc["methods"] = [{"name": "Tiny", "model": "tiny"}]
    doc["profiles"]["paper"]["train"] = {"steps": 2, "batch_size": 2, "patch_size": 32, "lr": 1e-3}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_pairing_cropping_and_seeded_noise(data_root):
    sots = paper.test_set(data_root, "sots", "sots_outdoor", None)
    assert [p.image_id for p in sots.pairs] == ["0001_0.8_0.2", "0002_0.8_0.2"]
    target = np.asarray(Image.open(data_root / "test/dehaze/target/0001.png"))
    # 40×52 → centre crop to 32×48: (40 % 16) // 2 = 4 rows off the top, (52 % 16) // 2 = 2 columns off the left
    np.testing.assert_array_equal(sots.pairs[0].clean, target[4:36, 2:50])
    noisy_a = paper.test_set(data_root, "s25", "bsd68", 25).pairs[1]
    noisy_b = paper.test_set(data_root, "s25", "bsd68", 25).pairs[1]
    np.testing.assert_array_equal(noisy_a.degraded, noisy_b.degraded)
    assert noisy_a.degraded.shape == (32, 48, 3)


def test_unpaired_input_is_named(data_root):
    (data_root / "test/derain/Rain100L/target/2.png").unlink()
    with pytest.raises(HarnessError, match=r"1 input\(s\) without a target .*'2.png'"):
        paper.test_set(data_root, "rain", "rain100l", None)


def test_training_pairs_follow_naming_rules(data_root):
    sampler = paper.PaperPatchSampler(data_root, [("derain", None), ("dehaze", None), ("denoise", 15.0)])
    assert [p[1].name for p in sampler.pairs["derain"]] == ["norain-1.png", "norain-2.png"]
    assert [p[1].name for p in sampler.pairs["dehaze"]] == ["0021.png", "0022.png"]
    degraded, clean = sampler.sample(np.random.default_rng(0), 6, 32)
    assert degraded.shape == clean.shape == (6, 32, 32, 3)


def test_paper_profile_runs_on_fixture(data_root, tiny_suite, tmp_path):
    outcome = run_suite(str(tiny_suite), profile="paper", data_root=data_root, results_root=tmp_path / "res",
                        progress=False, log=lambda *a: None)
    doc = json.loads((outcome.run_dir / "results.json").read_text())
    assert doc["comparable_with_paper"] is True
    assert doc["data"]["columns"]["rain100l"]["n_images"] == 2
    assert doc["data"]["protocol"] == {"crop_multiple": 16, "noise": "per_image"}
    assert {r["image_id"] for r in doc["per_image"] if r["column"] == "sots"} == {"0001_0.8_0.2", "0002_0.8_0.2"}
    assert len(doc["per_image"]) == 5 * 2


def test_missing_data_stops_before_training(data_root, tiny_suite, tmp_path, monkeypatch):
    import shutil

    from harness import runner

    def must_not_train(*a, **k):
        raise AssertionError("training started despite missing data")

    monkeypatch.setattr(runner, "train", must_not_train)
    shutil.rmtree(data_root / "Train/Derain/gt")
    with pytest.raises(DataMissingError, match=r"(?s)icst\.pku\.edu\.cn.*missing .*Train/Derain/gt"):
        run_suite(str(tiny_suite), profile="paper", data_root=data_root, results_root=tmp_path / "res", progress=False)
    assert not (tmp_path / "res").exists()
