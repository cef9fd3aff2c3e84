"""The regression gate catches a perturbed model and a missing cell; passes an identical rerun."""
import contextlib
import io
import json

import pytest
import torch
import yaml
from suite_helpers import resolved

from harness import methods
from harness.cli import main
from harness.runner import run_suite


class Tiny(torch.nn.Module):
    pad_multiple = 1

    def __init__(self, shift: float = 0.0):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.shift = shift

    def forward(self, x):
        return x + self.conv(x) + self.shift


@pytest.fixture()
def suite(tmp_path):
    doc = resolved("table1_three_task")
    doc["methods"] = [{"name": "A", "model": "tiny"}, {"name": "B", "model": "tiny", "kwargs": {"width": 1}}]
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return str(path)


def _run(suite, root, monkeypatch, shift=0.0, methods_subset=None):
    monkeypatch.setitem(methods.BUILTIN, "tiny", methods.MethodSpec("tiny", "test", lambda **kw: Tiny(shift)))
    return run_suite(suite, profile="mini", results_root=root, steps=2, progress=False, log=lambda *a: None,
                     method_names=methods_subset)


def _gate(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["gate", *map(str, args)])
    return code, out.getvalue()


def test_gate_passes_identical_rerun_and_fails_on_drift(tmp_path, monkeypatch, suite):
    golden = tmp_path / "golden.json"
    first = _run(suite, tmp_path / "r1", monkeypatch)
    assert _gate(first.run_dir, "--golden", golden, "--update")[0] == 0
    stored = json.loads(golden.read_text())
    assert stored["suite"] == "table1_three_task" and set(stored["cells"]) == {"A", "B"}

    again = _run(suite, tmp_path / "r2", monkeypatch)
    code, out = _gate(again.run_dir, "--golden", golden)
    assert code == 0 and "gate passed: 10 cells" in out

    perturbed = _run(suite, tmp_path / "r3", monkeypatch, shift=0.03)
    code, out = _gate(perturbed.run_dir, "--golden", golden)
    assert code == 1 and "gate FAILED" in out
    assert "A / sots / psnr_y" in out and "vs golden" in out

    # a looser tolerance lets the same drift through only if it is larger than the drift
    drift = abs(perturbed.results.cell_value("A", "sots", "psnr_y") - first.results.cell_value("A", "sots", "psnr_y"))
    assert drift > 0.05


def test_missing_cell_fails_the_gate(tmp_path, monkeypatch, suite):
    golden = tmp_path / "golden.json"
    full = _run(suite, tmp_path / "r1", monkeypatch)
    _gate(full.run_dir, "--golden", golden, "--update")
    partial = _run(suite, tmp_path / "r2", monkeypatch, methods_subset=["A"])
    code, out = _gate(partial.run_dir / "results.json", "--golden", golden)
    assert code == 1 and "B / sots: missing from the run" in out


def test_gate_bad_inputs(tmp_path, monkeypatch, suite):
    run = _run(suite, tmp_path / "r1", monkeypatch)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["gate", str(run.run_dir), "--golden", str(tmp_path / "nope.json")])
    assert code == 2 and "golden file" in err.getvalue() and "--update" in err.getvalue()
    # LATEST pointer of a results folder resolves to the newest run
    code, out = _gate(tmp_path / "r1" / "table1_three_task" / "mini", "--golden", tmp_path / "g.json", "--update")
    assert code == 0 and run.run_dir.name in out
