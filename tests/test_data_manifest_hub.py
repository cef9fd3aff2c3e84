"""Manifests (sha256 per file, one hash per run) and Hugging Face downloads tested offline.

The Hub tests run the real ``huggingface_hub.snapshot_download`` against a local fake
repository: a cache folder laid out as the library lays out its own
(``datasets--<owner>--<name>/snapshots/<commit>/…``), with ``local_files_only=True``.
"""
import hashlib
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from test_data_fixtures import image, make_root, save, suite_file, write_dataset

from harness.data import catalog, check, config, hub, manifest, paper
from harness.data.errors import ChecksumError, DataIntegrityError, DownloadError, NoPublicCopyError
from harness.data.sources import prepare, structure
from harness.suite import load_suite

pytestmark = pytest.mark.filterwarnings("ignore::harness.data.errors.DataWarning")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    from harness import methods

    monkeypatch.setitem(methods.BUILTIN, "tiny", methods.MethodSpec("tiny", "test", lambda **kw: None))
    root = make_root(tmp_path / "data", "promptir")
    return load_suite(str(suite_file(tmp_path))), root


def _write_manifest(suite, root):
    from harness.data.sources import plan, validate_columns

    sources = config.resolve(root)
    found = structure(sources, plan(validate_columns(suite), True))
    for c in found:
        check.complete(c, images="none", counts_policy="warn")
    doc = manifest.build(found)
    manifest.write(sources.manifest_path, doc)
    return doc


def test_manifest_has_a_sha256_per_file_and_the_run_records_its_hash(tiny):
    suite, root = tiny
    doc = _write_manifest(suite, root)
    files = doc["datasets"]["rain100l"]["files"]
    assert set(files) == {"input/1.png", "input/2.png", "target/1.png", "target/2.png"}
    assert files["input/1.png"]["sha256"] == hashlib.sha256((root / "test/derain/Rain100L/input/1.png").read_bytes()).hexdigest()
    assert doc["datasets"]["reside_ots"]["files"].keys() >= {"input/part1/0001_0.8_0.2.png", "target/0001.png"}
    prepared = prepare(suite, "paper", root, 0)
    assert prepared.provenance["manifest_sha256"] == doc["sha256"]
    assert prepared.provenance["manifest_source"].startswith("file ")


def test_changed_data_are_refused(tiny):
    suite, root = tiny
    _write_manifest(suite, root)
    save(root / "test/denoise/bsd68/img3.png", image(np.random.default_rng(1)))
    with pytest.raises(DataIntegrityError, match=r"bsd68: 1 file\(s\) are not in the manifest, e.g\. clean/img3\.png"):
        prepare(suite, "paper", root, 0)
    (root / "test/denoise/bsd68/img3.png").unlink()
    save(root / "test/derain/Rain100L/target/1.png", np.zeros((40, 52, 3), np.uint8))  # compresses far smaller
    with pytest.raises(DataIntegrityError, match=r"rain100l: 1 file\(s\) changed size since the manifest, e\.g\. target/1\.png"):
        prepare(suite, "paper", root, 0)


def test_same_size_edit_of_a_test_file_is_caught_by_its_sha256(tiny):
    suite, root = tiny
    _write_manifest(suite, root)
    path = root / "test/denoise/bsd68/img2.png"
    pixels = np.asarray(Image.open(path)).copy()
    pixels[5, 5] = 255 - pixels[5, 5]
    save(path, pixels)
    doc = json.loads(config.resolve(root).manifest_path.read_text())
    doc["datasets"]["bsd68"]["files"]["clean/img2.png"]["bytes"] = path.stat().st_size  # sizes agree now
    manifest.write(config.resolve(root).manifest_path, doc)
    with pytest.raises(DataIntegrityError, match=r"1 test file\(s\) changed .*bsd68: clean/img2\.png"):
        prepare(suite, "paper", root, 0)


def test_without_a_manifest_the_run_computes_one(tiny):
    suite, root = tiny
    first = prepare(suite, "paper", root, 0).provenance
    assert first["manifest_source"].startswith("computed at run time")
    assert first == prepare(suite, "paper", root, 0).provenance  # deterministic: part of the results cache key
    (root / "test/derain/Rain100L/input/1.png").write_bytes((root / "test/derain/Rain100L/input/2.png").read_bytes())
    assert prepare(suite, "paper", root, 0).provenance["manifest_sha256"] != first["manifest_sha256"]


def test_manifest_keys_do_not_depend_on_the_layout(tmp_path):
    write_dataset(tmp_path / "a", "promptir", "bsd68", seed=3)
    write_dataset(tmp_path / "b", "moce", "bsd68", seed=3)
    digests = []
    for root in (tmp_path / "a", tmp_path / "b"):
        found = check.scan(config.resolve(root).locate("bsd68"), images="none", counts_policy="warn")
        digests.append(manifest.build([found])["sha256"])
    assert digests[0] == digests[1]


# ------------------------------------------------------------------ Hugging Face Hub, offline


def _cdd11_zip(path, types=("haze", "low_haze"), n=2, evil=False):
    rng = np.random.default_rng(0)
    staging = path.parent / "staging"
    for i in range(1, n + 1):
        for folder in ("clear", *types):
            save(staging / "CDD-11_test" / folder / f"{i:06d}.png", image(rng))
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(staging.rglob("*.png")):
            zf.write(f, f.relative_to(staging).as_posix())
        if evil:
            zf.writestr("../outside.png", b"x")
    return path


@pytest.fixture()
def fake_hub(tmp_path):
    """A Hugging Face cache holding gy65896/CDD-11 at COMMIT (plus the train zip, which must not be taken)."""
    cache = tmp_path / "hf-cache"
    snapshot = cache / "datasets--gy65896--CDD-11" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    _cdd11_zip(snapshot / "CDD-11_test.zip")
    (snapshot / "CDD-11_train.zip").write_bytes(b"not wanted")
    return cache


def test_download_pins_the_commit_verifies_and_maps_the_set(tmp_path, fake_hub):
    dest = tmp_path / "data"
    record = hub.download("cdd11", dest, revision=COMMIT, cache_dir=fake_hub, offline=True, log=lambda *a: None)
    zip_path = fake_hub / "datasets--gy65896--CDD-11" / "snapshots" / COMMIT / "CDD-11_test.zip"
    assert record["revision"] == COMMIT and record["repo_type"] == "dataset"
    assert record["files"] == {"CDD-11_test.zip": hashlib.sha256(zip_path.read_bytes()).hexdigest()}
    assert json.loads((dest / "cdd11" / hub.RECORD_NAME).read_text()) == record
    located = config.resolve(dest).locate("cdd11")  # the download wrote dest/dacode-bench-data.yaml
    assert located.origin.startswith("config") and (located.roles["root"][0] / "clear").is_dir()
    ts = paper.test_set(dest, "lh", "cdd11", parts="low_haze", crop_multiple=None)
    assert [p.image_id for p in ts.pairs] == ["000001", "000002"]
    # downloading again verifies against the recorded sha256 (trust on first use) …
    hub.download("cdd11", dest, revision=COMMIT, cache_dir=fake_hub, offline=True, log=lambda *a: None)
    # … and refuses a file that changed
    zip_path.write_bytes(zip_path.read_bytes() + b"tampered")
    with pytest.raises(ChecksumError, match=r"CDD-11_test\.zip: sha256 .* differs from the pinned"):
        hub.download("cdd11", dest, revision=COMMIT, cache_dir=fake_hub, offline=True, log=lambda *a: None)


def test_a_pinned_sha256_is_enforced_before_unpacking(tmp_path, fake_hub, monkeypatch):
    pinned = hub.HubSource("gy65896/CDD-11", ("CDD-11_test.zip",), True, "test", revision=COMMIT,
                           sha256={"CDD-11_test.zip": "0" * 64})
    monkeypatch.setitem(hub.HUB_SOURCES, "cdd11", pinned)
    with pytest.raises(ChecksumError, match="differs from the pinned 0000"):
        hub.download("cdd11", tmp_path / "data", cache_dir=fake_hub, offline=True, log=lambda *a: None)
    assert not (tmp_path / "data" / "cdd11" / "files").exists()


@pytest.mark.parametrize("revision, message", [
    (None, r"no pinned revision of gy65896/CDD-11 is bundled; pass --revision"),
    ("main", r"'main' is not a 40-hex commit id"),
    ("f" * 40, r"could not obtain gy65896/CDD-11 at f{40}: .*offline"),
])
def test_revision_must_be_a_commit_that_exists(tmp_path, fake_hub, revision, message):
    with pytest.raises(DownloadError, match=message):
        hub.download("cdd11", tmp_path / "data", revision=revision, cache_dir=fake_hub, offline=True, log=lambda *a: None)


def test_download_asks_the_hub_for_exactly_the_pinned_files(tmp_path, fake_hub, monkeypatch):
    calls = []
    real = hub._snapshot_download
    monkeypatch.setattr(hub, "_snapshot_download", lambda **kw: calls.append(kw) or real(**kw))
    hub.download("cdd11", tmp_path / "data", revision=COMMIT, cache_dir=fake_hub, offline=True, log=lambda *a: None)
    assert calls[0]["repo_id"] == "gy65896/CDD-11" and calls[0]["repo_type"] == "dataset"
    assert calls[0]["revision"] == COMMIT and calls[0]["allow_patterns"] == ["CDD-11_test.zip"]


def test_sets_without_a_public_copy_say_where_they_are_published(tmp_path):
    for dataset_id in ("sots_outdoor", "rain100l", "gopro", "reside_ots"):
        with pytest.raises(NoPublicCopyError, match=r"no verified public copy .* published at") as info:
            hub.download(dataset_id, tmp_path, revision=COMMIT)
        assert catalog.get(dataset_id).published_at in str(info.value)


def test_archive_members_outside_the_destination_are_refused(tmp_path):
    archive = _cdd11_zip(tmp_path / "evil.zip", evil=True)
    with pytest.raises(DownloadError, match="would be written outside"):
        hub._extract(archive, tmp_path / "out")
    assert not (tmp_path / "outside.png").exists()


def _fake_repo(cache, repo_id):
    snapshot = cache / f"datasets--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    return snapshot


def test_download_of_plain_files_and_of_a_tarball(tmp_path):
    import tarfile

    cache, rng = tmp_path / "hf", np.random.default_rng(0)
    lol = _fake_repo(cache, "laxury/LLIE-LoL-v1")
    for i in (1, 2):
        save(lol / "Test/input" / f"{i}.png", image(rng))
        save(lol / "Test/target" / f"{i}.png", image(rng))
    save(lol / "Train/input/9.png", image(rng))  # not in allow_patterns: left alone
    bsd = _fake_repo(cache, "deepinv/CBSD68")
    staging = tmp_path / "cbsd"
    for i in range(3):
        save(staging / "CBSD68" / f"{i}.png", image(rng))
    with tarfile.open(bsd / "cbsd68.tar.gz", "w:gz") as tf:
        tf.add(staging / "CBSD68", arcname="CBSD68")
    dest = tmp_path / "data"
    for dataset_id in ("lol_v1", "bsd68"):
        hub.download(dataset_id, dest, revision=COMMIT, cache_dir=cache, offline=True, log=lambda *a: None)
    assert not (dest / "lol_v1/files/Train").exists()
    assert len(paper.test_set(dest, "lol", "lol_v1", counts="warn").pairs) == 2
    assert len(paper.test_set(dest, "s", "bsd68", 25, counts="warn").pairs) == 3
