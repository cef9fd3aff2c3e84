"""Suite files: the bundled Table 1 suite and the errors for bad suite files."""
import pathlib

import pytest
import yaml
from suite_helpers import resolved

from harness.errors import HarnessError
from harness.suite import SUITES_DIR, available_suites, load_suite

TABLE1 = SUITES_DIR / "table1_three_task.yaml"


def test_table1_matches_the_paper_layout():
    suite = load_suite("table1_three_task")
    assert [c.id for c in suite.columns] == ["sots", "rain100l", "bsd68_s15", "bsd68_s25", "bsd68_s50"]
    assert [c.sigma for c in suite.columns if c.task == "denoise"] == [15, 25, 50]
    assert [m.name for m in suite.methods] == ["AirNet", "PromptIR", "AdaIR", "MoCE-IR", "DACode"]
    assert suite.metrics == ("psnr_y", "ssim_y")
    assert set(suite.profiles) == {"mini", "paper"}
    assert not suite.profiles["mini"].comparable_with_paper
    # §4.2: AdamW lr 2e-4, batch 12, 128x128 patches, 150 epochs
    paper = suite.profiles["paper"].train
    assert (paper.lr, paper.batch_size, paper.patch_size, paper.epochs) == (2e-4, 12, 128, 150)


def test_the_paper_disagrees_with_itself_exactly_here():
    """Every printed Average is recomputed from its columns, every textual claim from the table.

    The numbers stay as printed (never fix the paper); these are the places where they
    disagree, found by hand-checking the paper's text
    (docs/models/dacode.md#where-the-paper-disagrees-with-itself).
    """
    from harness.consistency import check_suite

    found = {(d.suite, d.where.split(" (")[0], d.printed, d.recomputed)
             for name in available_suites() for d in check_suite(load_suite(name))}
    assert found == {
        ("table1_three_task", "AirNet Average SSIM", 0.910, 0.9094),
        ("table1_three_task", "Art-PromptIR Average PSNR", 32.49, 32.478),
        ("table2_five_task", "PromptIR Average SSIM", 0.883, 0.8836),
        ("table2_five_task", "InstructIR Average SSIM", 0.908, 0.9048),
        ("table3_cdd11", "DACode-S Average PSNR", 29.81, 29.8191),
        ("table3_cdd11", "DACode-S Average SSIM", 0.890, 0.88945),
        ("table4_nc_ablation", '§5.1 says "a drastic performance drop of 1.83 dB in average PSNR', 1.83, 0.98),
        ("table5_adaptation", '§5.2 says "a substantial performance drop of 1.79 dB in average PSNR"', 1.79, 0.25),
        ("table5_adaptation", '§5.2 says "and 0.013 in average SSIM"', 0.013, 0.008),
    }


def test_paper_rows_carry_the_printed_numbers():
    t1 = load_suite("table1_three_task")
    assert next(r for r in t1.reported if r.method == "DACode").cells["sots"] == (31.50, 0.982)
    t3 = load_suite("table3_cdd11")
    dacode_s = next(r for r in t3.reported if r.method == "DACode-S")
    assert dacode_s.cells["low_haze_snow"] == (25.97, 0.805) and dacode_s.params == "12.5M"
    t4 = load_suite("table4_nc_ablation")
    assert [r.average for r in t4.reported][3] == (32.96, 0.922)
    assert [m.name for m in t4.methods] == ["0", "32", "48", "64 (Ours)", "80", "96", "128"]


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
    doc = resolved("table1_three_task")
    doc["columns"][1]["sgima"] = 3
    with pytest.raises(HarnessError, match=r"suite\.yaml: columns\[1\]\.sgima: Extra inputs are not permitted"):
        load_suite(str(_write(tmp_path, doc)))


def test_denoise_column_needs_sigma(tmp_path):
    doc = resolved("table1_three_task")
    del doc["columns"][2]["sigma"]
    with pytest.raises(HarnessError, match="denoise column needs 'sigma'"):
        load_suite(str(_write(tmp_path, doc)))


def test_reported_row_with_unknown_column(tmp_path):
    doc = resolved("table1_three_task")
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
