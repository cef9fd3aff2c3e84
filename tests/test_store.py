"""The results store publishes whole runs only and never touches earlier ones."""
import json

import pytest

from harness.errors import HarnessError
from harness.results import load
from harness.store import RunWriter, latest_run


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
    assert json.loads((tmp_path / "suite" / "mini" / "run1" / "results.json").read_text())["id"] == "run1"
    with pytest.raises(HarnessError, match="already exists; refusing to overwrite"):
        RunWriter(tmp_path, "suite", "mini", "run1")


def test_load_results_errors(tmp_path):
    with pytest.raises(HarnessError, match="not a run folder"):
        load(tmp_path)
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(HarnessError, match="not valid JSON"):
        load(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(HarnessError, match="schema_version 99 is not 2"):
        load(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 2, "run_id": "x"}))
    with pytest.raises(HarnessError, match="not a valid results document: suite: Field required"):
        load(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps([1, 2]))
    with pytest.raises(HarnessError, match="a results document is a JSON object, not list"):
        load(tmp_path)


def _write_cells(args):
    root, worker = args
    from harness.store import ResultsDB

    with ResultsDB(root) as db:
        db.start_run(f"run-{worker}", "suite", "0" * 64, "mini", 0, {}, {})
        for i in range(40):
            db.put_cell(f"{worker}-{i}", "m", f"run-{worker}", "M", f"c{i}", [{"image_id": "x", "psnr_y": float(i)}])
        db.end_run(f"run-{worker}", "complete", {})


def test_two_processes_write_at_once(tmp_path):
    """WAL mode: concurrent writers neither fail nor lose rows."""
    import multiprocessing

    from harness.store import ResultsDB

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_write_cells, [(tmp_path, 0), (tmp_path, 1)])
    with ResultsDB(tmp_path) as db:
        assert db.count_cells() == 80
        assert sorted(r["status"] for r in db.runs()) == ["complete", "complete"]
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.cell("1-39") == [{"image_id": "x", "psnr_y": 39.0}]


def test_artefacts_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from harness import atomic

    umask = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "table.html", "<html></html>")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
