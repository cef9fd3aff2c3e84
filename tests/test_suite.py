"""Suite files: the bundled Table 1 suite and the errors for bad suite files."""
import pathlib

import pytest
import yaml

from harness.errors import HarnessError
from harness.suite import SUITES_DIR, available_suites, load_suite

TABLE1 = SUITES_DIR / "table1_three_task.yaml"


def test_table1_matches_the_paper_layout():
    suite = load_suite("table1_three_task")
    assert [c.id for c in suite.columns] == ["sots", "rain100l", "bsd68_s15", "bsd68_s25", "bsd68_s50"]
    assert [c.sigma for c in suite.columns if c.task == "denoise"] == [15, 25, 50]
    assert [m.name for m in suite.methods] == ["AirNet", "PromptIR", "DACode"]
    assert suite.metrics == ("psnr_y", "ssim_y")
    assert set(suite.profiles) == {"mini", "paper"}
    assert not suite.profiles["mini"].comparable_with_paper
    # §4.2: AdamW lr 2e-4, batch 12, 128x128 patches, 150 epochs
    paper = suite.profiles["paper"].train
    assert (paper.lr, paper.batch_size, paper.patch_size, paper.epochs) == (2e-4, 12, 128, 150)


def test_table1_reported_averages_are_means_of_columns():
    """The paper's Average is the mean of the five columns, rounded to its printed precision.

    Two printed values disagree with their own columns and stay as printed (never fix the
    paper): AirNet's SSIM columns average 0.9094 (printed 0.910) and Art-PromptIR's PSNR
    columns 32.478 (printed 32.49).
    """
    suite = load_suite("table1_three_task")
    dacode = next(r for r in suite.reported if r.method == "DACode")
    assert dacode.cells["sots"] == (31.50, 0.982)
    disagreements = []
    for row in suite.reported:
        psnr = sum(v[0] for v in row.cells.values()) / len(row.cells)
        ssim = sum(v[1] for v in row.cells.values()) / len(row.cells)
        if abs(row.average[0] - psnr) > 0.005 + 1e-9:
            disagreements.append((row.method, "PSNR", round(psnr, 3), row.average[0]))
        if abs(row.average[1] - ssim) > 0.0005 + 1e-9:
            disagreements.append((row.method, "SSIM", round(ssim, 4), row.average[1]))
    assert disagreements == [("AirNet", "SSIM", 0.9094, 0.910), ("Art-PromptIR", "PSNR", 32.478, 32.49)]


def test_available_suites_lists_table1():
    assert "table1_three_task" in available_suites()


def _write(tmp_path: pathlib.Path, doc) -> pathlib.Path:
    path = tmp_path / "suite.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path, "name: x\ncolumns: [a, b\nmethods: []\n")
    with pytest.raises(HarnessError, match=r"suite\.yaml: line \d+, column \d+: malformed YAML"):
        load_suite(str(path))


def test_unknown_key_is_named(tmp_path):
    doc = yaml.safe_load(TABLE1.read_text())
    doc["columns"][1]["sgima"] = 3
    with pytest.raises(HarnessError, match=r"suite\.yaml: columns\[1\]\.sgima: Extra inputs are not permitted"):
        load_suite(str(_write(tmp_path, doc)))


def test_denoise_column_needs_sigma(tmp_path):
    doc = yaml.safe_load(TABLE1.read_text())
    del doc["columns"][2]["sigma"]
    with pytest.raises(HarnessError, match="denoise column needs 'sigma'"):
        load_suite(str(_write(tmp_path, doc)))


def test_reported_row_with_unknown_column(tmp_path):
    doc = yaml.safe_load(TABLE1.read_text())
    doc["reported"][0]["cells"]["gopro"] = [1.0, 0.5]
    with pytest.raises(HarnessError, match="unknown columns \\['gopro'\\]"):
        load_suite(str(_write(tmp_path, doc)))


def test_unknown_suite_lists_available():
    with pytest.raises(HarnessError, match="unknown suite 'table9'; available: .*table1_three_task"):
        load_suite("table9")


def test_unknown_profile_lists_allowed():
    with pytest.raises(HarnessError, match="unknown profile 'fast'; allowed: mini, paper"):
        load_suite("table1_three_task").profile("fast")


def test_not_a_mapping(tmp_path):
    with pytest.raises(HarnessError, match="must be a mapping"):
        load_suite(str(_write(tmp_path, "- a\n- b\n")))
