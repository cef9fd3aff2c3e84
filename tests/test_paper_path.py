"""The paper path end to end on the CPU, at real image sizes: a small tree in the PromptIR layout
(481×321 PNGs, 620×460 JPEG hazy inputs, `counts: warn`), the paper profile with a couple of
training steps run as micro-batches, and a row loaded with --checkpoints. This is the run that the
kernel once killed at 24 GB without a word; here it must finish, labelled as a subset, and say how
it was run."""
import json
import os
import pathlib
import resource
import subprocess
import sys

import numpy as np
import pytest
import test_data_fixtures as fixtures
import torch
import yaml
from PIL import Image
from suite_helpers import resolved

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture()
def real_size_root(tmp_path, monkeypatch):
    monkeypatch.setattr(fixtures, "TEST_SIZE", (321, 481))  # Rain100L / BSD68 size
    monkeypatch.setattr(fixtures, "TRAIN_SIZE", (321, 481))
    root = fixtures.make_root(tmp_path / "data", "promptir", n=2, counts="warn")
    rng = np.random.default_rng(1)
    for png in (root / "test" / "dehaze" / "input").glob("*.png"):  # SOTS: 620×460 JPEG inputs
        Image.fromarray(rng.integers(0, 256, (460, 620, 3), dtype=np.uint8)).save(png.with_suffix(".jpg"), quality=90)
        png.unlink()
    for png in (root / "test" / "dehaze" / "target").glob("*.png"):
        Image.fromarray(rng.integers(0, 256, (460, 620, 3), dtype=np.uint8)).save(png)
    return root


def test_paper_profile_at_real_sizes_with_micro_batches_and_a_checkpoint(real_size_root, tmp_path):
    import baselines

    torch.manual_seed(0)
    promptir = baselines.create_model("promptir", **baselines.mini_config("promptir"))
    from safetensors.torch import save_file

    save_file(promptir.state_dict(), str(tmp_path / "promptir_mini.safetensors"))
    doc = resolved("table1_three_task")
    doc["name"] = "table1_paper_path"
    # small honest settings: AirNet at a quarter of its width trains two steps of the paper's batch of 12
    # at 128², as micro-batches of 4; PromptIR (mini width) comes from a checkpoint
    doc["methods"] = [
        {"name": "AirNet", "model": "airnet", "kwargs": {"channels": 16, "n_groups": 2, "n_blocks": 1}},
        {"name": "PromptIR", "model": "promptir", "kwargs": baselines.mini_config("promptir")},
    ]
    doc["profiles"]["paper"]["train"] = {"steps": 2, "batch_size": 12, "patch_size": 128, "lr": 2e-4, "micro_batch": 4}
    suite = tmp_path / "paper_path.yaml"
    suite.write_text(yaml.safe_dump(doc, allow_unicode=True))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(suite), "--profile", "paper", "--data-root", str(real_size_root),
         "--checkpoints", f"PromptIR={tmp_path / 'promptir_mini.safetensors'}", "--results", str(tmp_path / "r"),
         "--workers", "2"],
        capture_output=True, text=True, env=env, timeout=1200)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    print(f"paper-path run: peak RSS {peak_gib:.2f} GiB")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    run_dir = next((tmp_path / "r" / "table1_paper_path" / "paper").glob("2*"))
    results = json.loads((run_dir / "results.json").read_text())
    assert "subset" in results["profile_label"] and "subset" in (run_dir / "table.txt").read_text()
    assert results["data"]["columns"]["sots"]["n_images"] == 2
    airnet = next(m for m in results["methods"] if m["name"] == "AirNet")
    assert airnet["train"]["steps"] == 2 and airnet["train"]["micro_batch"] == 4
    assert any("BatchNorm" in n for n in airnet["train"]["notes"])  # AirNet's encoder: said, not hidden
    assert any(n.startswith("memory check:") for n in airnet["train"]["notes"])
    promptir_row = next(m for m in results["methods"] if m["name"] == "PromptIR")
    assert promptir_row["train"] is None and len(promptir_row["checkpoint_sha256"]) == 64
    assert results["inference"]["description"] == "inference on whole images"
    # images are scored at their protocol size: Rain100L 481×321 → 480×320, SOTS 620×460 → 608×448
    assert peak_gib < 6.0, peak_gib
