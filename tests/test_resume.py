"""An interrupted run resumes where it stopped: nothing lost, nothing duplicated, same numbers."""
import pytest

from harness import provider, runner
from harness import train as train_module
from harness.store import ResultsDB

pytestmark = pytest.mark.slow


def _metrics(outcome):
    return [(r.method, r.column, r.image_id, r.values["psnr_y"], r.values["ssim_y"]) for r in outcome.results.per_image]


def _run(root, log=None):
    return runner.run_suite("table1_three_task", profile="mini", results_root=root, steps=6, progress=False,
                            method_names=["AirNet", "PromptIR", "DACode"],
                            log=log or (lambda *a: None), checkpoint_every=2)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _metrics(_run(tmp_path_factory.mktemp("clean")))


def test_kill_during_evaluation_then_rerun(tmp_path, monkeypatch, uninterrupted):
    calls = {"n": 0}
    real_evaluate = runner.evaluate

    def dying_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # PromptIR's third column (AirNet did 5)
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", dying_evaluate)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    with ResultsDB(tmp_path) as db:
        assert db.count_cells() == 7 and [r["status"] for r in db.runs()] == ["interrupted"]
    assert not (tmp_path / "table1_three_task").exists()

    monkeypatch.setattr(runner, "evaluate", real_evaluate)
    messages = []
    resumed = _run(tmp_path, log=messages.append)
    assert _metrics(resumed) == uninterrupted
    assert any("[AirNet] all 5 columns already computed" in m for m in messages)
    assert any("[PromptIR] reusing weights trained earlier" in m for m in messages)
    with ResultsDB(tmp_path) as db:
        assert db.count_cells() == 15  # 3 methods × 5 columns, none twice
        assert [r["status"] for r in db.runs()] == ["interrupted", "complete"]


def test_kill_during_training_then_rerun(tmp_path, monkeypatch, uninterrupted):
    real_save = train_module.save_training_state
    saves = {"n": 0}

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        saves["n"] += 1
        if saves["n"] == 4:  # PromptIR, after its second checkpoint (step 4 of 6)
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    monkeypatch.setattr(train_module, "save_training_state", real_save)
    messages = []
    assert _metrics(_run(tmp_path, log=messages.append)) == uninterrupted
    assert any(m.startswith("resuming PromptIR from step 4 of 6") for m in messages), messages


def test_a_second_identical_run_computes_nothing(tmp_path, monkeypatch, uninterrupted):
    _run(tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached cell was recomputed")

    monkeypatch.setattr(runner, "evaluate", must_not_run)
    monkeypatch.setattr(provider, "train", must_not_run)
    again = _run(tmp_path)
    assert _metrics(again) == uninterrupted
    assert len(list((tmp_path / "table1_three_task" / "mini").glob("2*"))) == 2  # both runs kept
