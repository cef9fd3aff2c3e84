"""Bad input: each case gets a HarnessError subclass naming the file or folder and what to do."""
import warnings

import numpy as np
import pytest
from PIL import Image
from test_data_fixtures import make_root, save, suite_file

from harness.data import check, config, paper
from harness.data.errors import (
    DataIntegrityError,
    DataMissingError,
    DataWarning,
    ImageConversionWarning,
    ImageReadError,
)
from harness.data.images import read_header, read_rgb
from harness.data.sources import prepare
from harness.errors import HarnessError
from harness.suite import load_suite

pytestmark = pytest.mark.filterwarnings("ignore::harness.data.errors.DataWarning")


@pytest.fixture()
def root(tmp_path):
    return make_root(tmp_path / "data", "promptir")


def _scan(root, dataset_id, **kw):
    return check.scan(config.resolve(root).locate(dataset_id), counts_policy="warn", **kw)


def test_missing_folder_names_it_and_where_the_set_is_published(tmp_path):
    root = tmp_path / "empty_root"
    root.mkdir()
    with pytest.raises(DataMissingError) as info:
        paper.test_set(root, "s", "sots_outdoor")
    assert f"missing {root / 'test/dehaze/input'}" in str(info.value)
    with pytest.raises(DataMissingError, match=r"(?s)is incomplete.*Rain100L test \[rain100l\].*icst\.pku\.edu\.cn"
                                                r".*missing .*test/derain/Rain100L/input"):
        prepare(load_suite("table1_three_task"), "paper", root, 0)


def test_empty_folder(root):
    for f in (root / "test/denoise/bsd68").iterdir():
        f.unlink()
    (root / "test/denoise/bsd68/readme.txt").write_text("not an image")
    found = _scan(root, "bsd68")
    assert found.structural and found.errors == [f"empty {root / 'test/denoise/bsd68'} (no .png/.jpg/.jpeg/.bmp/.tif/.tiff images)"]


def test_unreadable_image(root):
    bad = root / "test/derain/Rain100L/input/2.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match=r"cannot read image '.*input/2\.png': not an image format .*replace or remove"):
        read_rgb(bad)
    found = _scan(root, "rain100l")
    assert len(found.errors) == 1 and "1 unreadable image(s)" in found.errors[0] and str(bad) in found.errors[0]
    with pytest.raises(DataIntegrityError, match=r"(?s)FAIL  rain100l.*input/2\.png"):
        paper.test_set(root, "r", "rain100l", counts="warn")


def test_truncated_image_is_found_by_a_full_check(root):
    path = root / "test/dehaze/target/0001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert read_header(path).width == 52  # the header alone looks fine
    assert _scan(root, "sots_outdoor", images="headers").ok
    full = _scan(root, "sots_outdoor", images="full")
    assert not full.ok and "0001.png" in full.errors[0]
    with pytest.raises(ImageReadError, match="0001.png"):
        read_rgb(path)


@pytest.mark.parametrize("mode, array", [
    ("L", np.full((40, 52), 7, np.uint8)),
    ("RGBA", np.full((40, 52, 4), 9, np.uint8)),
])
def test_grayscale_and_rgba_are_converted_with_a_warning(root, mode, array):
    path = root / "test/denoise/bsd68/img1.png"
    save(path, array, mode=mode)
    with pytest.warns(ImageConversionWarning, match=f"img1.png' is .*{mode}.*converted to RGB"):
        img = read_rgb(path)
    assert img.shape == (40, 52, 3) and img.dtype == np.uint8 and (img == array.reshape(40, 52, -1)[..., :1]).all()
    found = _scan(root, "bsd68")
    assert found.ok and any("converted to RGB" in w and "img1.png" in w for w in found.warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = paper.test_set(root, "s", "bsd68", 25, counts="warn")
    assert ts.pairs[0].clean.shape == (32, 48, 3)
    assert any(issubclass(w.category, DataWarning) and "converted to RGB" in str(w.message) for w in caught)


def test_sixteen_bit_image_is_refused_with_advice(root):
    path = root / "test/denoise/bsd68/img1.png"
    Image.fromarray(np.full((40, 52), 40000, np.uint16)).save(path)
    with pytest.raises(ImageReadError, match=r"img1\.png' has PIL mode 'I;16.*convert the file to 8-bit"):
        read_rgb(path)
    assert "mode 'I;16" in _scan(root, "bsd68").errors[0]


def test_odd_sizes_are_cropped_alike(tmp_path):
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 51, 3), dtype=np.uint8)
    save(root / "test/derain/Rain100L/input/1.png", img)
    save(root / "test/derain/Rain100L/target/1.png", img)
    pair = paper.test_set(root, "r", "rain100l", counts="warn").pairs[0]
    assert pair.degraded.shape == pair.clean.shape == (32, 48, 3)
    np.testing.assert_array_equal(pair.clean, img[2:34, 1:49])  # 37 % 16 = 5 → 2 off the top; 51 % 16 = 3 → 1 off the left


def test_image_smaller_than_the_crop_multiple(tmp_path):
    root = tmp_path / "d"
    tiny = np.zeros((12, 40, 3), np.uint8)
    save(root / "test/derain/Rain100L/input/1.png", tiny)
    save(root / "test/derain/Rain100L/target/1.png", tiny)
    with pytest.raises(DataIntegrityError, match=r"1 image\(s\) smaller than the crop multiple 16: .*1\.png \(40×12\)"):
        paper.test_set(root, "r", "rain100l", counts="warn")
    assert len(paper.test_set(root, "r", "rain100l", counts="warn", crop_multiple=None).pairs) == 1  # CDD-11 style: no crop


def test_input_target_size_mismatch_names_both(root):
    save(root / "test/derain/Rain100L/target/1.png", np.zeros((41, 52, 3), np.uint8))
    found = _scan(root, "rain100l")
    assert not found.ok
    assert "input/1.png is 52×40 but" in found.errors[0] and "target/1.png is 52×41" in found.errors[0]


def test_target_without_an_input(root):
    save(root / "test/derain/Rain100L/target/9.png", np.zeros((40, 52, 3), np.uint8))
    found = _scan(root, "rain100l")
    assert found.errors == [f"1 target(s) in {root / 'test/derain/Rain100L/target'} without an input, e.g. '9.png' "
                            f"(inputs in {root / 'test/derain/Rain100L/input'})"]
    save(root / "Train/Derain/gt/norain-9.png", np.zeros((48, 48, 3), np.uint8))
    train = _scan(root, "rain100l_train")
    assert train.ok and "without an input, e.g. 'norain-9.png'" in train.warnings[0]  # training: a warning


def test_duplicate_stems(root):
    save(root / "test/derain/Rain100L/target/1.jpg", np.zeros((40, 52, 3), np.uint8))
    save(root / "test/denoise/bsd68/sub/img1.png", np.zeros((40, 52, 3), np.uint8))
    assert "2 targets share the stem '1'" in _scan(root, "rain100l").errors[0]
    assert "image id 'img1' occurs 2 times" in _scan(root, "bsd68").errors[0]


def test_training_image_smaller_than_the_patch(tmp_path, monkeypatch):
    from harness import methods

    monkeypatch.setitem(methods.BUILTIN, "tiny", methods.MethodSpec("tiny", "test", lambda **kw: None))
    root = make_root(tmp_path / "d", "promptir")
    save(root / "Train/Denoise/small.png", np.zeros((20, 60, 3), np.uint8))
    with pytest.raises(DataIntegrityError, match=r"smaller than the 32px training patch: .*small\.png \(60×20\)"):
        prepare(load_suite(str(suite_file(tmp_path))), "paper", root, 0)


def test_hidden_and_non_image_files_are_ignored(root):
    (root / "test/derain/Rain100L/input/._1.png").write_bytes(b"macOS fork")
    (root / "test/derain/Rain100L/input/Thumbs.db").write_bytes(b"x")
    assert _scan(root, "rain100l").ok


def test_every_data_error_is_a_harness_error():
    from harness.data import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, HarnessError) or issubclass(cls, DataWarning), name
