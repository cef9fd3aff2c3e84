"""The results store publishes whole runs only and never touches earlier ones."""
import json

import pytest

from harness.errors import HarnessError
from harness.store import RunWriter, latest_run, load_results


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with RunWriter(tmp_path, "suite", "mini", "run1") as w:
            w.write_text("table.txt", "half")
            raise RuntimeError("killed while writing")
    base = tmp_path / "suite" / "mini"
    assert list(base.iterdir()) == []
    with pytest.raises(HarnessError, match="no complete run"):
        latest_run(tmp_path, "suite", "mini")


def test_runs_are_kept_and_latest_points_to_newest(tmp_path):
    for run_id in ("run1", "run2"):
        with RunWriter(tmp_path, "suite", "mini", run_id) as w:
            w.write_json("results.json", {"schema_version": 1, "id": run_id})
    assert latest_run(tmp_path, "suite", "mini").name == "run2"
    assert load_results(tmp_path / "suite" / "mini" / "run1")["id"] == "run1"
    with pytest.raises(HarnessError, match="already exists; refusing to overwrite"):
        RunWriter(tmp_path, "suite", "mini", "run1")


def test_load_results_errors(tmp_path):
    with pytest.raises(HarnessError, match="not a run folder"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(HarnessError, match="not valid JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(HarnessError, match="schema_version 99"):
        load_results(tmp_path)
