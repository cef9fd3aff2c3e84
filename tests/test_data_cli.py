"""`dacode-bench data …`: list, check (status 0 fine / 1 problems / 2 usage), manifest, download."""
import contextlib
import io
import json

import pytest
from test_data_fixtures import make_root

from harness.cli import main
from harness.data import mini


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def root(tmp_path):
    return make_root(tmp_path / "data", "promptir")


def test_list_names_every_id_and_where_it_is_published():
    code, out, _ = run("data", "list")
    assert code == 0
    for needle in ("sots_outdoor", "cdd11", "low_haze_snow", "gy65896/CDD-11", "test/dehaze/input",
                   "dehazing/SOTS/outdoor/hazy", "×120 per epoch", "sites.google.com/view/reside-dehaze-datasets"):
        assert needle in out, needle


def test_check_reports_fine_data(root):
    code, out, err = run("data", "check", "table1_three_task", "--data-root", str(root), "--test-only")
    assert code == 0 and not err
    assert "  warn  sots_outdoor" in out and "2 pairs (expected 500)" in out  # `counts: warn` in the fixture config
    assert out.strip().splitlines()[-1].startswith("result: all 3 dataset(s) usable; 3 with warnings")


def test_check_reports_problems_and_exits_1(root):
    (root / "test/derain/Rain100L/target/2.png").unlink()
    (root / "test/denoise/bsd68/img1.png").write_bytes(b"junk")
    code, out, err = run("data", "check", "table1_three_task", "--data-root", str(root), "--quick")
    assert code == 1 and "Traceback" not in out + err
    assert "  FAIL  rain100l" in out and "1 input(s) without a target" in out
    assert "  FAIL  bsd68" in out and "img1.png" in out
    assert "smaller than the 128px training patch" in out  # the paper profile trains on 128 px patches
    assert "a run refuses these data" in out


def test_check_without_data_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DACODE_BENCH_DATA", raising=False)
    code, out, err = run("data", "check", "table1_three_task")
    assert code == 2 and err.startswith("error: the paper profile needs --data-root") and len(err.splitlines()) == 1


def test_check_mini_builds_every_column(tmp_path, monkeypatch):
    monkeypatch.setenv(mini.CACHE_ENV, str(tmp_path / "cache"))
    mini.clear_memory_cache()
    code, out, _ = run("data", "check", "table3_cdd11", "--profile", "mini")
    assert code == 0 and out.count("  ok    ") == 11 and "mini/cdd11" in out and str(tmp_path / "cache") in out


def test_manifest_command(root):
    code, out, _ = run("data", "manifest", "table1_three_task", "--data-root", str(root))
    assert code == 0
    doc = json.loads((root / "dacode-bench-manifest.json").read_text())
    assert doc["sha256"] in out and set(doc["datasets"]) == {
        "sots_outdoor", "rain100l", "bsd68", "reside_ots", "rain100l_train", "bsd400_wed"}


def test_download_without_a_public_copy(tmp_path):
    code, _, err = run("data", "download", "gopro", "--dest", str(tmp_path))
    assert code == 2 and "no verified public copy of GoPro test" in err and "seungjunnah.github.io" in err
