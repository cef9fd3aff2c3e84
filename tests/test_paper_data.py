"""The paper profile on a small fixture laid out like the PromptIR/AirNet data folders."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_fixtures import make_root, suite_file

from harness import methods
from harness.data import paper
from harness.data.errors import DataIntegrityError
from harness.data.sources import prepare
from harness.errors import DataMissingError, HarnessError
from harness.runner import run_suite
from harness.suite import load_suite

pytestmark = pytest.mark.filterwarnings("ignore::harness.data.errors.DataWarning")  # the fixture's counts


@pytest.fixture()
def data_root(tmp_path):
    # two items per set: far below the published counts, so the fixture's config says `counts: warn`
    return make_root(tmp_path / "data", "promptir")


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
    return suite_file(tmp_path)


def test_pairing_cropping_and_seeded_noise(data_root):
    sots = paper.test_set(data_root, "sots", "sots_outdoor")
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
    with pytest.raises(DataIntegrityError, match=r"1 input\(s\) without a target .*'2.png'"):
        paper.test_set(data_root, "rain", "rain100l")


def test_training_pairs_follow_naming_rules(data_root, tiny_suite):
    sampler = prepare(load_suite(str(tiny_suite)), "paper", data_root, 0).sampler
    by_source = {s.part.key: s.items for s in sampler.sources}
    assert [i.target.name for i in by_source["rain100l_train"]] == ["norain-1.png", "norain-2.png"]
    assert [i.target.name for i in by_source["reside_ots"]] == ["0001.png", "0002.png"]
    degraded, clean = sampler.sample(np.random.default_rng(0), 6, 32)
    assert degraded.shape == clean.shape == (6, 32, 32, 3)


def test_paper_profile_runs_on_fixture(data_root, tiny_suite, tmp_path):
    outcome = run_suite(str(tiny_suite), profile="paper", data_root=data_root, results_root=tmp_path / "res",
                        progress=False, log=lambda *a: None)
    doc = json.loads((outcome.run_dir / "results.json").read_text())
    assert doc["comparable_with_paper"] is True
    assert doc["data"]["columns"]["rain100l"]["n_images"] == 2
    assert doc["data"]["protocol"] == {"crop_multiple": 16, "noise": "per_image"}
    assert len(doc["data"]["manifest_sha256"]) == 64
    assert "subset" in doc["profile_label"]  # counts: warn is visible on the artefacts
    assert {r["image_id"] for r in doc["per_image"] if r["column"] == "sots"} == {"0001_0.8_0.2", "0002_0.8_0.2"}
    assert len(doc["per_image"]) == 5 * 2


def test_missing_data_stops_before_training(data_root, tiny_suite, tmp_path, monkeypatch):
    import shutil

    from harness import provider

    def must_not_train(*a, **k):
        raise AssertionError("training started despite missing data")

    monkeypatch.setattr(provider, "train", must_not_train)
    shutil.rmtree(data_root / "Train/Derain/gt")
    with pytest.raises(DataMissingError, match=r"(?s)icst\.pku\.edu\.cn.*missing .*Train/Derain/gt"):
        run_suite(str(tiny_suite), profile="paper", data_root=data_root, results_root=tmp_path / "res", progress=False)
    assert not (tmp_path / "res").exists()


def test_bad_data_is_refused_before_training(data_root, tiny_suite, tmp_path, monkeypatch):
    from harness import provider

    monkeypatch.setattr(provider, "train", lambda *a, **k: pytest.fail("training started despite bad data"))
    (data_root / "test/derain/Rain100L/input/2.png").write_bytes(b"not a png")
    with pytest.raises(HarnessError, match=r"(?s)nothing was trained.*FAIL  rain100l.*unreadable.*input/2\.png"):
        run_suite(str(tiny_suite), profile="paper", data_root=data_root, results_root=tmp_path / "res", progress=False)


def test_per_image_noise_ignores_file_order_and_other_sigmas(data_root):
    first = paper.test_set(data_root, "s50", "bsd68", 50).pairs
    # another image that sorts first, and σ 15 drawn before σ 50: the σ 50 images do not move
    from test_data_fixtures import image, save

    save(data_root / "test/denoise/bsd68/img0.png", image(np.random.default_rng(5)))
    paper.test_set(data_root, "s15", "bsd68", 15)
    again = {p.image_id: p for p in paper.test_set(data_root, "s50", "bsd68", 50).pairs}
    for p in first:
        np.testing.assert_array_equal(p.degraded, again[p.image_id].degraded)


def test_legacy_stream_replays_the_official_scripts(data_root):
    sets = {s: paper.test_set(data_root, f"s{s}", "bsd68", s, noise="legacy_stream") for s in (15, 25, 50)}
    np.random.seed(0)
    for sigma in (15, 25, 50):
        for pair in sets[sigma].pairs:  # image ids sorted; noise drawn after the 16-crop
            noise = np.random.randn(*pair.clean.shape)
            np.testing.assert_array_equal(pair.degraded, np.clip(pair.clean + noise * sigma, 0, 255).astype(np.uint8))
    assert "legacy_stream" in sets[25].notes["noise"]
