"""The offline mini set: every column of all three protocols, content-addressed disk cache, noise modes."""
import time

import numpy as np
import pytest

from harness.data import mini
from harness.data.degradations import compose
from harness.data.sources import prepare
from harness.suite import load_suite

SUITES = ["table1_three_task", "table2_five_task", "table3_cdd11", "table4_nc_ablation", "table5_adaptation"]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(mini.CACHE_ENV, str(tmp_path / "cache"))
    mini.clear_memory_cache()
    yield tmp_path / "cache"
    mini.clear_memory_cache()


def _files(cache):
    return sorted(cache.rglob("*.npz"))


@pytest.mark.parametrize("suite", SUITES)
def test_every_column_builds_offline(cache, suite):
    prepared = prepare(load_suite(suite), "mini", None, 0)
    assert len(prepared.test_sets) == len(load_suite(suite).columns)
    for ts in prepared.test_sets:
        assert [p.image_id for p in ts.pairs] == list(mini.TEST_IMAGES)
        for p in ts.pairs:
            assert p.degraded.shape == p.clean.shape == (128, 128, 3) and p.degraded.dtype == np.uint8
            assert not np.array_equal(p.degraded, p.clean)
    assert len(prepared.provenance["manifest_sha256"]) == 64
    degraded, clean = prepared.sampler.sample(np.random.default_rng(0), 3, 32)
    assert degraded.shape == clean.shape == (3, 32, 32, 3)


def test_cdd11_columns_are_their_composites(cache):
    prepared = prepare(load_suite("table3_cdd11"), "mini", None, 0)
    by_id = {ts.column_id: ts for ts in prepared.test_sets}
    assert len({ts.pairs[0].degraded.tobytes() for ts in prepared.test_sets}) == 11
    clean = by_id["low"].pairs[0].clean
    assert by_id["low"].pairs[0].degraded.mean() < 0.5 * clean.mean()  # low light darkens
    assert by_id["low_haze_snow"].notes["parts"] == "low_haze_snow"


def test_generated_sets_are_cached_on_disk_by_content(cache, monkeypatch):
    first = mini.test_set("s25", "bsd68", "denoise", 25)
    n_files = len(_files(cache))
    assert n_files == 2 and all(str(f).startswith(str(cache / "mini")) for f in _files(cache))  # clean + test set

    def fail(*a, **k):
        raise AssertionError("regenerated despite the cache")

    mini.clear_memory_cache()
    monkeypatch.setattr(mini, "degrade", fail)
    monkeypatch.setattr(mini, "bundled_image", fail)
    again = mini.test_set("s25", "bsd68", "denoise", 25)
    for a, b in zip(first.pairs, again.pairs):
        np.testing.assert_array_equal(a.degraded, b.degraded)
        np.testing.assert_array_equal(a.clean, b.clean)
    monkeypatch.undo()
    monkeypatch.setenv(mini.CACHE_ENV, str(cache))
    other = mini.test_set("s25", "bsd68", "denoise", 25, seed=1)  # another key, another file
    assert len(_files(cache)) == n_files + 1
    assert not np.array_equal(other.pairs[0].degraded, first.pairs[0].degraded)


def test_damaged_cache_file_is_regenerated(cache):
    first = mini.test_set("h", "sots_outdoor", "dehaze")
    for f in _files(cache):
        if f.name.startswith("testset-"):
            f.write_bytes(b"garbage")
    again = mini.test_set("h", "sots_outdoor", "dehaze")
    np.testing.assert_array_equal(first.pairs[2].degraded, again.pairs[2].degraded)


def test_table1_builds_fast_once_cached(cache):
    suite = load_suite("table1_three_task")
    prepare(suite, "mini", None, 0)
    mini.clear_memory_cache()
    start = time.perf_counter()
    prepare(suite, "mini", None, 0)
    assert time.perf_counter() - start < 1.0


def test_per_image_noise_ignores_order_and_earlier_sigmas(cache):
    a50 = mini.test_set("c", "bsd68", "denoise", 50)
    a15 = mini.test_set("c", "bsd68", "denoise", 15)
    mini.clear_memory_cache()
    b15 = mini.test_set("c", "bsd68", "denoise", 15)  # σ 15 first this time
    b50 = mini.test_set("c", "bsd68", "denoise", 50)
    for x, y in ((a15, b15), (a50, b50)):
        for p, q in zip(x.pairs, y.pairs):
            np.testing.assert_array_equal(p.degraded, q.degraded)


def test_legacy_stream_replays_the_official_order(cache):
    got = {s: mini.test_set("c", "bsd68", "denoise", s, noise="legacy_stream") for s in (15, 25, 50)}
    cleans = dict(mini.clean_test_images())
    np.random.seed(0)  # the official scripts: seed once, σ 15 → 25 → 50 over the same images
    for sigma in (15, 25, 50):
        for image_id in sorted(cleans):
            clean = cleans[image_id]
            noisy = np.clip(clean + np.random.randn(*clean.shape) * sigma, 0, 255).astype(np.uint8)
            pair = next(p for p in got[sigma].pairs if p.image_id == image_id)
            np.testing.assert_array_equal(pair.degraded, noisy)
    # independent of the run seed: it is the official seed-0 stream
    assert np.array_equal(mini.test_set("c", "bsd68", "denoise", 25, seed=9, noise="legacy_stream").pairs[0].degraded,
                          got[25].pairs[0].degraded)


def test_mini_composite_column_matches_compose(cache):
    ts = mini.test_set("lhr", "cdd11", "composite", parts="low_haze_rain", seed=0)
    clean = ts.pairs[0].clean
    rng = np.random.default_rng(mini._noise_seed("cdd11", ts.pairs[0].image_id, "composite", None, "low_haze_rain", 0))
    np.testing.assert_array_equal(ts.pairs[0].degraded, compose("low_haze_rain", clean, rng))
