"""Table 1 on the mini profile, end to end: honest checks on real (small) training runs."""
import json

import numpy as np
import pytest

from harness.data import mini
from harness.metrics import score
from harness.runner import run_suite
from harness.train import to_tensor

pytestmark = pytest.mark.slow
ROWS = ["AirNet", "PromptIR", "DACode"]  # the paper's two baselines and DACode: enough to test the path


def _run(tmp_path, name, **kw):
    return run_suite("table1_three_task", profile="mini", results_root=tmp_path / name,
                     progress=False, log=lambda *a: None, **kw)


def test_same_seed_gives_bit_identical_metrics_and_labelled_artefacts(tmp_path):
    first = _run(tmp_path, "a", steps=3, method_names=ROWS)
    second = _run(tmp_path, "b", steps=3, method_names=ROWS)
    metrics_a = [(r.method, r.column, r.image_id, r.values) for r in first.results.per_image]
    metrics_b = [(r.method, r.column, r.image_id, r.values) for r in second.results.per_image]
    assert metrics_a == metrics_b  # exact float equality
    assert {m for m, *_ in metrics_a} == {"AirNet", "PromptIR", "DACode"}
    assert len(metrics_a) == 3 * 5 * len(mini.TEST_IMAGES)

    label = "not comparable with the paper"
    for name in ("table.tex", "table.html", "table.txt", "results.json"):
        assert label in (first.run_dir / name).read_text(), name
    doc = json.loads((first.run_dir / "results.json").read_text())
    assert doc["profile"] == "mini" and doc["comparable_with_paper"] is False
    assert doc["provenance"]["packages"]["torch"] and doc["suite_sha256"]
    assert set(doc["timings"]) >= {"data_s", "train_s", "eval_s", "metrics_s", "render_s"}
    # the Average column is the mean of the five column means
    dacode = doc["cells"]["DACode"]
    assert doc["averages"]["DACode"]["psnr_y"] == pytest.approx(np.mean([v["values"]["psnr_y"] for v in dacode.values()]))
    assert all(m["params"] > 0 for m in doc["methods"])


def test_trained_mini_dacode_beats_the_identity_on_sigma25(tmp_path):
    # 200 of the profile's 400 steps: +3.8 dB over the identity (measured), so the 3 dB floor is a real check
    outcome = _run(tmp_path, "dacode", method_names=["DACode"], steps=200)
    dacode_psnr = outcome.results.cell_value("DACode", "bsd68_s25", "psnr_y")
    test_set = mini.test_set("bsd68_s25", "bsd68", "denoise", 25)
    degraded = to_tensor(np.stack([p.degraded for p in test_set.pairs]))
    clean = to_tensor(np.stack([p.clean for p in test_set.pairs]))
    identity_psnr = float(score("psnr_y", degraded, clean).mean())
    assert dacode_psnr - identity_psnr >= 3.0, (dacode_psnr, identity_psnr)
