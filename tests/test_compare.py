"""`dacode-bench compare`: a new method's row beside the paper's and the reproduced rows, with
per-image significance; runs that cannot be compared are refused."""
import contextlib
import io

import pytest
from report_helpers import fake_results, write_run

from harness.cli import main
from harness.errors import HarnessError
from reports import compare

# six images: the fewest for which a two-sided Wilcoxon p can fall below 0.05 (2 / 2**6)
IDS = tuple(f"img{i:02d}" for i in range(6))


def _runs(tmp_path, new_shift=1.0, ids=IDS):
    official = fake_results("table1_three_task", image_ids=ids, run_id="run-official")
    mine = fake_results("table1_three_task", methods=["DACode"], extra={"MyNet <b>&": new_shift},
                        image_ids=ids, run_id="run-mine")
    # the second run scored only the new row (as `run my_suite.yaml --methods "MyNet <b>&"` would)
    mine.methods = [m for m in mine.methods if m.name != "DACode"]
    mine.cells.pop("DACode")
    mine.averages.pop("DACode")
    mine.per_image = [r for r in mine.per_image if r.method != "DACode"]
    return write_run(tmp_path / "a", official), write_run(tmp_path / "b", mine)


def _cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_new_row_beside_paper_and_reproduced_rows(tmp_path):
    a, b = _runs(tmp_path)
    result = compare.compare_runs([a, b], against="paper")
    assert result.new_methods == ["MyNet <b>&"]
    main_table = result.tables[0]
    assert [r.kind for r in main_table.rows].count("paper") == 9
    assert [(r.kind, r.name) for r in main_table.rows if r.kind != "paper"] == [
        ("reproduced", "AirNet"), ("reproduced", "PromptIR"), ("reproduced", "AdaIR"), ("reproduced", "MoCE-IR"),
        ("reproduced", "DACode"), ("new", "MyNet <b>&")]
    new_row = main_table.rows[-1]
    # mini: the new row is ranked with the reproduced rows (same images), never with the paper's
    assert all(cell[0].rank == 1 for cell in new_row.cells)
    paper_dacode = next(r for r in main_table.rows if r.kind == "paper" and r.name == "DACode")
    assert all(cell[0].rank == 1 for cell in paper_dacode.cells)
    titles = [t.title for t in result.tables]
    assert any("paired significance" in t for t in titles) and any("Δ vs paper" in t for t in titles)


def test_paired_significance_marks(tmp_path):
    a, b = _runs(tmp_path, new_shift=1.0)
    result = compare.compare_runs([a, b])
    paired = next(t for t in result.tables if "paired significance" in t.title)
    vs_dacode = next(r for r in paired.rows if r.name.endswith("− DACode"))
    assert all(cell[0].text.endswith("*") and abs(float(cell[0].text[:-1]) - 1.0) < 0.1 for cell in vs_dacode.cells)
    # a shift far below the per-image noise is not significant: no star
    a, b = _runs(tmp_path / "close", new_shift=0.001)
    result = compare.compare_runs([a, b])
    paired = next(t for t in result.tables if "paired significance" in t.title)
    vs_dacode = next(r for r in paired.rows if r.name.endswith("− DACode"))
    assert not any(cell[0].text.endswith("*") for cell in vs_dacode.cells)


def test_few_images_say_why_nothing_is_significant(tmp_path):
    a, b = _runs(tmp_path, ids=("x1", "x2", "x3", "x4"))
    paired = next(t for t in compare.compare_runs([a, b]).tables if "paired significance" in t.title)
    assert "smallest possible two-sided Wilcoxon p is 0.125" in paired.caption


def test_incompatible_runs_are_refused(tmp_path):
    official = fake_results("table1_three_task")
    other_images = fake_results("table1_three_task", run_id="r2")
    other_images.data["manifest_sha256"] = "f" * 64
    with pytest.raises(HarnessError, match="other test images"):
        compare.compare([official, other_images])
    paper = fake_results("table1_three_task", profile="paper", run_id="r3")
    with pytest.raises(HarnessError, match="never compared"):
        compare.compare([official, paper])
    with pytest.raises(HarnessError, match="columns"):
        compare.compare([official, fake_results("table2_five_task", run_id="r4")])
    with pytest.raises(HarnessError, match="--new names"):
        compare.compare([official], new=["Nope"])


def test_same_name_with_other_numbers_is_renamed(tmp_path):
    a = fake_results("table1_three_task", run_id="first")
    b = fake_results("table1_three_task", methods=["DACode"], seed=5, run_id="second")
    merged, notes = compare.merge([a, b])
    assert [m.name for m in merged.methods][-1] == "DACode [second]"
    assert any("several runs" in n for n in notes)
    again = a.model_copy(deep=True, update={  # the same DACode row, reused by a later run
        "run_id": "third", "methods": [m for m in a.methods if m.name == "DACode"],
        "per_image": [r for r in a.per_image if r.method == "DACode"]})
    same, notes = compare.merge([a, again])
    assert len(same.methods) == len(a.methods) and not notes  # identical rows are shown once


def test_cli_compare_writes_each_format(tmp_path):
    a, b = _runs(tmp_path)
    code, out, err = _cli("compare", str(a), str(b), "--against", "paper")
    assert code == 0, err
    assert "-- New methods --" in out and "MyNet <b>&" in out and "-- As printed in the paper --" in out
    for fmt, needle in (("markdown", "MyNet &lt;b&gt;&amp;"), ("latex", r"MyNet \textless{}b\textgreater{}\&"),
                        ("html", "MyNet &lt;b&gt;&amp;")):
        target = tmp_path / f"cmp.{fmt}"
        code, out, err = _cli("compare", str(a.parent), str(b), "--format", fmt, "--out", str(target))
        assert code == 0, err
        text = target.read_text()
        assert needle in text and "<b>&" not in text.replace("<b>&amp;", "")
    code, _, err = _cli("compare", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("error: ")
