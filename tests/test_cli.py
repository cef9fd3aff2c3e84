"""Bad input on the command line: one-line error naming the problem, exit 2, nothing written."""
import pathlib
import subprocess
import sys

import pytest
import yaml
from suite_helpers import resolved


def run_cli(*args: str, cwd: pathlib.Path, subprocess_run: bool = False):
    """Run the CLI in-process (fast) or as `python -m harness` (the real entry point)."""
    if subprocess_run:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    import contextlib
    import io
    import os

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture()
def workdir(tmp_path):
    return tmp_path


def test_unknown_suite(workdir):
    proc = run_cli("run", "table7", "--results", "out", cwd=workdir, subprocess_run=True)
    _assert_one_line_error(proc, "unknown suite 'table7'", "table1_three_task")
    assert not (workdir / "out").exists()


def test_unknown_profile(workdir):
    proc = run_cli("run", "table1_three_task", "--profile", "quick", "--results", "out", cwd=workdir)
    _assert_one_line_error(proc, "unknown profile 'quick'", "allowed: mini, paper")
    assert not (workdir / "out").exists()


def test_unknown_method_row(workdir):
    proc = run_cli("run", "table1_three_task", "--methods", "Restormer", "--results", "out", cwd=workdir)
    _assert_one_line_error(proc, "no method 'Restormer'", "AirNet, PromptIR, AdaIR, MoCE-IR, DACode")
    assert not (workdir / "out").exists()


def test_unknown_method_id_in_suite_file(workdir):
    doc = resolved("table1_three_task")
    doc["methods"][0]["model"] = "restormer"
    path = workdir / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    proc = run_cli("run", str(path), "--results", "out", cwd=workdir)
    _assert_one_line_error(proc, "unknown method 'restormer'", "airnet", "dacode", "promptir")
    assert not (workdir / "out").exists()


def test_malformed_suite_yaml(workdir):
    path = workdir / "broken.yaml"
    path.write_text("name: broken\ncolumns: [\n")
    proc = run_cli("run", str(path), "--results", "out", cwd=workdir)
    _assert_one_line_error(proc, "broken.yaml", "malformed YAML")
    assert not (workdir / "out").exists()


def test_missing_suite_file(workdir):
    proc = run_cli("run", "nowhere.yaml", cwd=workdir)
    _assert_one_line_error(proc, "suite file 'nowhere.yaml' does not exist")


def test_paper_profile_without_data_root(workdir):
    proc = run_cli("run", "table1_three_task", "--profile", "paper", "--results", "out", cwd=workdir)
    _assert_one_line_error(proc, "--data-root")


def test_paper_profile_names_each_missing_folder(workdir):
    root = workdir / "data"
    (root / "test" / "denoise" / "bsd68").mkdir(parents=True)
    (root / "test" / "denoise" / "bsd68" / "a.png").write_bytes(b"not checked here")
    proc = run_cli("run", "table1_three_task", "--profile", "paper", "--data-root", str(root),
                   "--results", "out", cwd=workdir)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # the data check ran and refused
    err = proc.stderr
    for folder in ["test/dehaze/input", "test/dehaze/target", "test/derain/Rain100L/input",
                   "test/derain/Rain100L/target", "Train/Denoise", "Train/Derain/rainy", "Train/Derain/gt",
                   "Train/Dehaze/synthetic", "Train/Dehaze/original"]:
        assert f"missing {root / folder}" in err, folder
    assert "test/denoise/bsd68" not in err  # present, so not reported
    assert "sites.google.com/view/reside-dehaze-datasets" in err and "CBSD68" not in err.split("incomplete")[0]
    assert "nothing was trained" in err
    assert not (workdir / "out").exists()


def test_suites_command_lists_table1(workdir):
    proc = run_cli("suites", cwd=workdir)
    assert proc.returncode == 0 and "table1_three_task" in proc.stdout


def test_validate_lists_paper_disagreements(workdir):
    proc = run_cli("validate", "table4_nc_ablation", cwd=workdir)
    assert proc.returncode == 0
    assert "table4_nc_ablation: valid (5 columns, 7 methods" in proc.stdout
    assert "1.83 dB" in proc.stdout and "recomputed 0.98" in proc.stdout


def test_validate_rejects_a_bad_file(workdir):
    path = workdir / "bad.yaml"
    doc = resolved("table5_adaptation")
    doc["claims"][0]["minuend"] = "Nobody"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _assert_one_line_error(run_cli("validate", str(path), cwd=workdir), "bad.yaml", "claim at §5.2 names rows ['Nobody']")


def test_suites_lists_all_five_tables(workdir):
    proc = run_cli("suites", cwd=workdir)
    for name in ("table1_three_task", "table2_five_task", "table3_cdd11", "table4_nc_ablation", "table5_adaptation"):
        assert name in proc.stdout
