"""Figures from DACode's introspection API and restored images: numbers, files, labels."""
import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures (pip install matplotlib)")

import dacode  # noqa: E402
from harness import data as hdata  # noqa: E402
from harness.data import Pair, mini  # noqa: E402
from harness.suite import load_suite  # noqa: E402
from reports import figures  # noqa: E402

LABEL = mini.LABEL


@pytest.fixture(scope="module")
def tiny():
    """A small untrained DACode, and the Table 1 mini test sets cut to two 32×32 images per column."""
    torch.manual_seed(0)
    model = dacode.create_model("dacode", dim=8, blocks=[1] * 7, refinement_blocks=1, nc=12, code_dim=16,
                                heads=[1, 1, 1, 1], code_heads=2).eval()
    columns = load_suite("table1_three_task").columns
    sets = []
    for c in columns:
        full = mini.test_set(c.id, c.dataset, c.task, c.sigma)
        pairs = [Pair(p.image_id, p.degraded[40:72, 40:72].copy(), p.clean[40:72, 40:72].copy()) for p in full.pairs[:2]]
        sets.append(hdata.TestSet(c.id, full.dataset_id, pairs, full.notes))
    return model, columns, sets


def test_activations_are_distributions_over_the_codebook(tiny):
    model, columns, sets = tiny
    acts = figures.task_activations(model, sets, columns)
    assert list(acts) == ["Dehazing", "Deraining", "Denoising"]  # σ 15/25/50 pooled, as in Fig. 7
    assert acts["Denoising"].shape == (6, 12) and acts["Dehazing"].shape == (2, 12)
    assert np.allclose(acts["Deraining"].sum(axis=1), 1.0, atol=1e-5)
    # the mean over layers equals what record_codebook gives layer by layer
    images = [p.degraded for p in sets[0].pairs]
    with dacode.record_codebook(model) as rec, torch.no_grad():
        model(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255)
    by_layer = torch.stack([rec.activations[n] for n in rec.layers]).mean(0).numpy()
    assert np.allclose(figures.record_activations(model, images), by_layer, atol=1e-6)
    layer = rec.layers[0]
    assert np.allclose(figures.record_activations(model, images, layer=layer), rec.activations[layer].numpy(), atol=1e-6)
    w, i = figures.topk(acts["Dehazing"].mean(0), 5)
    assert list(i) == list(np.argsort(-acts["Dehazing"].mean(0))[:5]) and np.all(np.diff(w) <= 0)


def test_severity_levels_differ_only_in_intensity(tiny):
    _, columns, sets = tiny
    sev = figures.severity_images(sets, columns, seed=0)
    assert list(sev) == ["Dehazing", "Deraining", "Denoising"]
    clean = sets[0].pairs[0].clean.astype(float)
    (light, (lt,)), (heavy, (hv,)) = [(lv, imgs[:1]) for lv, imgs in sev["Dehazing"]]
    assert (light, heavy) == ("light haze", "heavy haze")
    assert np.abs(hv - clean).mean() > np.abs(lt - clean).mean()  # heavier haze strays further
    (_, (n15, _)), (_, (n50, _)) = sev["Denoising"]
    clean_noise = sets[2].pairs[0].clean.astype(float)
    assert np.std(n50 - clean_noise) > 2 * np.std(n15 - clean_noise)
    again = figures.severity_images(sets, columns, seed=0)
    assert np.array_equal(again["Deraining"][1][1][0], sev["Deraining"][1][1][0])  # seeded


def test_make_figures_writes_png_and_pdf_with_the_label(tiny, tmp_path):
    model, columns, sets = tiny
    restored = {"Id$entity": {ts.column_id: {p.image_id: p.degraded for p in ts.pairs} for ts in sets}}
    result = figures.make_figures(model, sets, columns, tmp_path, label=LABEL, restored=restored)
    names = [f.name for f in result.figures]
    assert names == ["fig3_qualitative", "fig4a_fingerprints", "fig4b_top5", "fig5_severity",
                     "fig7_9_full_dehazing", "fig7_9_full_deraining", "fig7_9_full_denoising"]
    for f in result.figures:
        assert f.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.pdf.read_bytes()[:5] == b"%PDF-"
    assert set(result.data["activations"]) == {"Dehazing", "Deraining", "Denoising"}
    assert result.data["images"] == {"Dehazing": 2, "Deraining": 2, "Denoising": 6}
    # same inputs, same bytes (no time stamps in the files)
    acts = figures.task_activations(model, sets, columns)
    again = figures.save_figure(figures.plot_topk(acts, 5, LABEL), tmp_path / "again", "fig4b_top5")
    assert again[0].read_bytes() == (tmp_path / "fig4b_top5.png").read_bytes()
    assert again[1].read_bytes() == (tmp_path / "fig4b_top5.pdf").read_bytes()


def test_label_is_drawn_on_every_figure(tiny):
    model, columns, sets = tiny
    acts = figures.task_activations(model, sets, columns)
    fig = figures.plot_fingerprints(acts, LABEL)
    assert "not comparable with the paper" in fig._suptitle.get_text().replace("\n", " ")


def test_qualitative_rows_carry_each_images_psnr(tiny):
    _, columns, sets = tiny
    from harness.metrics import score
    from harness.train import to_tensor

    by_id = {ts.column_id: ts for ts in sets}
    restored = {"Clean": {ts.column_id: {p.image_id: p.clean for p in ts.pairs} for ts in sets},
                "Input": {ts.column_id: {p.image_id: p.degraded for p in ts.pairs} for ts in sets}}
    rows = figures.qualitative_rows(sets, columns, restored)
    assert [r.title.split("\n")[0] for r in rows] == ["Dehazing", "Deraining", "Denoising"]
    assert "σ = 50" in rows[2].title  # the hardest noise level
    heads = [t[0] for t in rows[0].tiles]
    assert heads == ["Degraded", "Clean", "Input", "Ground truth"]
    pair = by_id["sots"].pairs[0]
    expected = float(score("psnr_y", to_tensor(pair.degraded[None]), to_tensor(pair.clean[None]))[0])
    assert rows[0].tiles[0][2] == f"PSNR {expected:.2f} dB" == rows[0].tiles[2][2]
    assert float(rows[0].tiles[1][2].split()[1]) >= 60  # identical to the target (the metric's cap)


def test_grid_columns_per_task_and_hardest_composites():
    cdd = load_suite("table3_cdd11").columns
    # the two triples and the first double, in the table's order (as Fig. 10 shows three composites)
    assert [c.id for c in figures.qualitative_columns(cdd)] == ["haze_rain", "low_haze_rain", "low_haze_snow"]
    five = load_suite("table2_five_task").columns
    assert [c.task for c in figures.qualitative_columns(five)] == ["dehaze", "derain", "denoise", "deblur", "lowlight"]
    assert list(figures.task_groups(cdd))[:2] == ["Haze(H)", "Low(L)"]  # each CDD-11 type is its own row


def test_paper_run_without_data_explains_instead_of_failing(tmp_path):
    from report_helpers import fake_results, write_run

    doc = fake_results("table1_three_task", profile="paper")
    run = write_run(tmp_path / "results", doc)
    result = figures.figures_for_run(doc, run, tmp_path / "figs", data_root=tmp_path / "no-data")
    assert result.figures == [] and "--data-root" in result.notes[0]
