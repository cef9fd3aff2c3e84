"""The three routes by which a new method enters a suite, and their errors."""
import textwrap

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from suite_helpers import resolved

from harness.data import mini
from harness.errors import HarnessError
from harness.runner import run_suite

USER_MODULE = textwrap.dedent('''
    import torch

    class ResidualConv(torch.nn.Module):
        pad_multiple = 1

        def __init__(self, width=4):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(width, 3, 3, padding=1))

        def forward(self, x):
            return x + self.body(x)

    def build(width=4):
        return ResidualConv(width)

    not_callable = 3
''')


@pytest.fixture()
def user_package(tmp_path, monkeypatch):
    """A user's module on sys.path, plus an installed distribution advertising it as an entry point."""
    (tmp_path / "my_restorer.py").write_text(USER_MODULE)
    dist = tmp_path / "my_restorer-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-restorer\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dacode_bench.methods]\nmy-restorer = my_restorer:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _suite(tmp_path, methods):
    doc = resolved("table1_three_task")
    doc["methods"] = methods
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return str(path)


def _run(suite, tmp_path, **kw):
    return run_suite(suite, profile="mini", results_root=tmp_path / "results", progress=False,
                     log=lambda *a: None, steps=2, **kw)


def test_dotted_path_and_entry_point_rows(user_package, tmp_path):
    suite = _suite(tmp_path, [
        {"name": "Mine (dotted)", "build": "my_restorer:build", "kwargs": {"width": 6}},
        {"name": "Mine (entry point)", "model": "my-restorer", "kwargs": {"width": 6}},
    ])
    outcome = _run(suite, tmp_path)
    docs = {m.name: m for m in outcome.results.methods}
    assert docs["Mine (dotted)"].params == docs["Mine (entry point)"].params == (3 * 6 * 9 + 6) + (6 * 3 * 9 + 3)
    # same builder, same seed, same data: identical rows
    cells = outcome.results.cells
    assert cells["Mine (dotted)"] == cells["Mine (entry point)"]
    assert "Mine (dotted)" in outcome.text_table


def test_checkpoint_is_loaded_instead_of_training(user_package, tmp_path):
    import my_restorer
    from safetensors.torch import save_file

    torch.manual_seed(5)
    reference = my_restorer.build(width=4).eval()
    save_file(reference.state_dict(), str(tmp_path / "weights.safetensors"))
    suite = _suite(tmp_path, [{"name": "Mine", "build": "my_restorer:build",
                               "checkpoint": str(tmp_path / "weights.safetensors")}])
    outcome = _run(suite, tmp_path)
    doc = outcome.results.methods[0]
    assert doc.train is None and len(doc.checkpoint_sha256) == 64
    # the stored score is the reference model's score on the same test image
    from harness.metrics import score
    from harness.train import to_tensor

    pair = mini.test_set("bsd68_s25", "bsd68", "denoise", 25).pairs[0]
    with torch.no_grad():
        expected = score("psnr_y", reference(to_tensor(pair.degraded[None])).clamp(0, 1), to_tensor(pair.clean[None])).item()
    stored = next(r for r in outcome.results.per_image if r.column == "bsd68_s25" and r.image_id == pair.image_id)
    assert stored.values["psnr_y"] == expected


def test_outputs_folder_is_scored_without_a_model(tmp_path):
    suite_doc = resolved("table1_three_task")
    outputs = tmp_path / "restored"
    for column in suite_doc["columns"]:
        test_set = mini.test_set(column["id"], column["dataset"], column["task"], column.get("sigma"))
        (outputs / column["id"]).mkdir(parents=True)
        for pair in test_set.pairs:  # a perfect method: returns the ground truth
            Image.fromarray(pair.clean).save(outputs / column["id"] / f"{pair.image_id}.png")
    outcome = _run(_suite(tmp_path, [{"name": "Oracle", "outputs": str(outputs)}]), tmp_path)
    for cell in outcome.results.cells["Oracle"].values():
        assert cell.values["ssim_y"] == pytest.approx(1.0) and cell.values["psnr_y"] > 70
    assert outcome.results.methods[0].params_display == "-"


def test_outputs_folder_missing_images(tmp_path):
    outputs = tmp_path / "restored"
    (outputs / "sots").mkdir(parents=True)
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(outputs / "sots" / "astronaut.png")
    with pytest.raises(HarnessError, match=r"outputs folder '.*restored/sots' lacks 3 of 4 restored images \(e\.g\. coffee"):
        _run(_suite(tmp_path, [{"name": "Partial", "outputs": str(outputs)}]), tmp_path)
    assert not (tmp_path / "results" / "table1_three_task").exists()  # no run folder published
    from harness.store import ResultsDB

    with ResultsDB(tmp_path / "results") as db:
        assert [r["status"] for r in db.runs()] == ["failed"]


def test_outputs_folder_that_does_not_exist(tmp_path):
    with pytest.raises(HarnessError, match="outputs folder '.*nowhere' does not exist"):
        _run(_suite(tmp_path, [{"name": "X", "outputs": str(tmp_path / "nowhere")}]), tmp_path)


@pytest.mark.parametrize("path, message", [
    ("my_restorer.build", "expected 'package.module:function'"),
    ("no_such_module_xyz:build", "cannot import module 'no_such_module_xyz'"),
    ("my_restorer:missing", "has no attribute 'missing'"),
    ("my_restorer:not_callable", "'not_callable' is not callable"),
])
def test_bad_dotted_paths(user_package, tmp_path, path, message):
    with pytest.raises(HarnessError, match=message):
        _run(_suite(tmp_path, [{"name": "X", "build": path}]), tmp_path)


def test_missing_entry_point_names_the_group(tmp_path):
    with pytest.raises(HarnessError, match="unknown method 'restormer'.*dacode.*entry-point group 'dacode_bench.methods'"):
        _run(_suite(tmp_path, [{"name": "X", "model": "restormer"}]), tmp_path)


def test_a_row_needs_exactly_one_source(tmp_path):
    with pytest.raises(HarnessError, match="exactly one of 'model', 'build' or 'outputs'"):
        _run(_suite(tmp_path, [{"name": "X", "model": "dacode", "build": "a:b"}]), tmp_path)


def test_checkpoints_option_replaces_training(user_package, tmp_path):
    """`--checkpoints NAME=PATH` (run_suite(checkpoints=...)) loads weights for that row."""
    import my_restorer
    from safetensors.torch import save_file

    torch.manual_seed(9)
    save_file(my_restorer.build(width=4).state_dict(), str(tmp_path / "w.safetensors"))
    suite = _suite(tmp_path, [{"name": "Mine", "build": "my_restorer:build"}])
    outcome = _run(suite, tmp_path, checkpoints={"mine": str(tmp_path / "w.safetensors")})
    doc = outcome.results.methods[0]
    assert doc.train is None and doc.checkpoint == str(tmp_path / "w.safetensors")
    with pytest.raises(HarnessError, match="--checkpoints names row 'Other'.*rows: Mine"):
        _run(suite, tmp_path, checkpoints={"Other": str(tmp_path / "w.safetensors")})
