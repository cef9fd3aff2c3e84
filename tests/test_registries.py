"""Adding a table layout, an output format, a metric protocol or a dataset kind is one registry entry
plus its function; the tests below are those worked examples, and they also pin down the contract
(a lower-is-better metric is ranked that way, border_crop is applied, the released-checkpoint
table shows both protocols side by side)."""
import dataclasses

import pytest
import torch
from report_helpers import fake_results, small_results

from harness import metrics
from harness.data import catalog, check
from reports import formats, layouts
from reports.tables import Table, build_tables


def test_a_lower_is_better_metric_is_ranked_lowest_first(monkeypatch):
    mae = metrics.MetricProtocol(
        name="mae", display="MAE", channel="RGB", library="torch", window="-", data_range="1",
        quantisation="none", border_crop=0, higher_is_better=False, decimals=4, gate_tolerance=1e-3,
        compute=lambda r, t: (r - t).abs().flatten(1).mean(1).double())
    monkeypatch.setitem(metrics.PROTOCOLS, "mae", mae)  # the whole registration of a new protocol
    doc = small_results([{"id": "c", "group": "G", "label": "L"}],
                        {"A": [(30.0, 0.010)], "B": [(29.0, 0.020)], "C": [(28.0, 0.030)]}, metrics=("psnr_y", "mae"))
    table = build_tables(doc)[0]
    psnr_ranks = [r.cells[0][0].rank for r in table.rows]
    mae_ranks = [r.cells[0][1].rank for r in table.rows]
    assert psnr_ranks == [1, 2, 0] and mae_ranks == [1, 2, 0]  # 0.0100 is the best MAE
    assert table.rows[0].cells[0][1].text == "0.0100"  # the protocol's decimals
    from harness.gate import tolerances_for

    assert tolerances_for(["psnr_y", "mae"]) == {"psnr_y": 0.05, "mae": 1e-3}


def test_border_crop_is_applied(monkeypatch):
    cropped = dataclasses.replace(metrics.PROTOCOLS["psnr_rgb"], name="psnr_rgb_crop4", border_crop=4)
    monkeypatch.setitem(metrics.PROTOCOLS, "psnr_rgb_crop4", cropped)
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    restored = target.clone()
    restored[..., :4, :] = 1 - restored[..., :4, :]  # wrong only inside the 4-pixel border
    restored[..., 10, 10] += 0.01
    assert metrics.score("psnr_rgb_crop4", restored, target) > metrics.score("psnr_rgb", restored, target) + 20
    interior = metrics.score("psnr_rgb", restored[..., 4:-4, 4:-4], target[..., 4:-4, 4:-4])
    assert torch.allclose(metrics.score("psnr_rgb_crop4", restored, target), interior)


def test_a_new_layout_and_a_new_format_are_one_entry_each(monkeypatch):
    def one_row_per_column(given) -> list[Table]:  # a layout: methods as columns, one row per test column
        return [Table(title=given.doc.title, caption="", label=given.doc.profile_label, groups=[],
                      column_labels=[e.name for e in given.entries], rows=[], show_params=False)]

    monkeypatch.setitem(layouts.LAYOUTS, "transposed_methods",
                        layouts.LayoutSpec("transposed_methods", one_row_per_column, "methods as columns"))
    monkeypatch.setitem(formats.FORMATS, "csv", formats.FormatSpec(
        "csv", lambda tables: "\n".join(",".join(t.column_labels) for t in tables) + "\n", ".csv", "column labels"))
    doc = fake_results("table1_three_task")
    doc.layout = doc.layout.model_copy(update={"kind": "transposed_methods"})
    assert formats.render("csv", build_tables(doc)) == "AirNet,PromptIR,AdaIR,MoCE-IR,DACode\n"


def test_a_new_dataset_kind_is_one_entry_plus_its_collector(monkeypatch, tmp_path):
    """A kind whose inputs and targets sit side by side in one folder as x_in.png / x_gt.png."""
    from PIL import Image

    monkeypatch.setitem(catalog.DATASET_KINDS, "side_by_side", catalog.DatasetKind(
        "side_by_side", ("root",), "pair", False, False, "x_in.png beside x_gt.png"))

    def collect(c: check.DatasetCheck) -> None:
        root = c.folders.roles["root"][0]
        inputs = sorted(root.glob("*_in.png"))
        c.items[""] = [check.Item(p.stem[:-3], p, p.with_name(p.stem[:-3] + "_gt.png")) for p in inputs]
        c.files = inputs + [i.target for i in c.items[""]]

    monkeypatch.setitem(check.COLLECTORS, "side_by_side", collect)
    info = dataclasses.replace(catalog.DATASETS["lol_v1"], id="pairs_here", kind="side_by_side",
                               expected_count=2, count_verified=False)
    monkeypatch.setitem(catalog.DATASETS, "pairs_here", info)
    for name in ("a", "b"):
        for suffix in ("in", "gt"):
            Image.new("RGB", (40, 36), (10, 20, 30)).save(tmp_path / f"{name}_{suffix}.png")
    from harness.data.config import DatasetFolders

    found = check.scan(DatasetFolders(info, {"root": [tmp_path]}, "test"), crop_multiple=16)
    assert found.ok and [i.image_id for i in found.items[""]] == ["a", "b"]


def test_released_checkpoints_table_shows_both_protocols_and_the_shift():
    doc = fake_results("released_checkpoints", methods=["AdaIR", "MoCE-IR-S"])
    doc.cells["AdaIR"]["sots"].values.update(psnr_y=30.0, psnr_rgb=31.25, ssim_y=0.95, ssim_rgb=0.97)
    (table,) = build_tables(doc, paper=doc.reported)
    rows = [(h, r.name) for h, r in table.headed_rows()]
    assert rows[:4] == [("AdaIR", "printed in its paper"), (None, "own protocol (psnr_rgb/ssim_rgb)"),
                        (None, "Y protocol (psnr_y/ssim_y)"), (None, "shift: Y − own protocol")]
    adair = {r.name: r for r in table.rows[:4]}
    assert [m.text for m in adair["printed in its paper"].cells[0]] == ["31.06", "0.980"]
    assert [m.text for m in adair["own protocol (psnr_rgb/ssim_rgb)"].cells[0]] == ["31.25", "0.970"]
    assert [m.text for m in adair["Y protocol (psnr_y/ssim_y)"].cells[0]] == ["30.00", "0.950"]
    assert [m.text for m in adair["shift: Y − own protocol"].cells[0]] == ["-1.25", "-0.020"]
    moce_s = [r for h, r in table.headed_rows() if h == "MoCE-IR-S"][0]
    assert moce_s.name == "printed in its paper" and moce_s.cells[-1][0].text == "32.57"  # the average it printed
    assert "own protocol (psnr_rgb/ssim_rgb_gauss)" in [r.name for r in table.rows]  # MoCE-IR's Gaussian SSIM
    assert not table.has_marks  # protocols are compared, not methods
    text = formats.render("text", [table])
    assert "shift: Y − own protocol" in text and "-- AdaIR --" in text


def test_every_registry_lists_what_it_holds():
    assert set(layouts.LAYOUTS) >= {"table", "split_metrics", "ablation", "protocols"}
    assert set(formats.FORMATS) == {"text", "markdown", "latex", "html"}
    assert set(catalog.DATASET_KINDS) == set(check.COLLECTORS) == {"clean", "paired", "cdd11"}
    from harness.data.degradations import DEGRADATIONS
    from harness.data.sources import DATA_SOURCES
    from harness.suite import Task

    assert set(DEGRADATIONS) == set(Task.__args__) and set(DATA_SOURCES) == {"mini", "benchmark"}
    with pytest.raises(Exception, match="unknown table layout 'nope'"):
        layouts.get_layout("nope")
