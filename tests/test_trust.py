"""Trustworthy numbers on a user's own methods and suites: never a stale, ignored or crashed table.

Each silent-wrong case of the past has a regression test here, run through the real command
line (a fresh process, as a user runs it): an edited plug-in is recomputed, a suite copy's own
printed rows are the ones shown, a NaN is neither trained on nor stored, an untrained model is
never published, and `validate` refuses what `run` refuses.
"""
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import yaml
from suite_helpers import resolved

ROOT = pathlib.Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    import torch

    SHIFT = {shift}

    class Net(torch.nn.Module):
        pad_multiple = 1

        def __init__(self, width=4, poison=False):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(width, 3, 3, padding=1))
            if poison:  # a weight that is NaN from the start: the first loss is NaN
                with torch.no_grad():
                    self.body[0].weight[0, 0, 0, 0] = float("nan")

        def forward(self, x):
            return x + self.body(x) + SHIFT

    class Nan(Net):
        def forward(self, x):
            return x * float("nan")

    class Wrong(Net):
        def forward(self, x):
            return x[:, :1]

    def build(width=4, poison=False):
        return Net(width, poison)

    def build_nan():
        return Nan()

    def build_wrong():
        return Wrong()

    def build_raises():
        raise RuntimeError("the GPU kernel is not compiled")
''')


def _user_folder(folder):
    pkg = folder / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "restorer.py").write_text(PLUGIN.format(shift=0.0))
    return folder


@pytest.fixture()
def user(tmp_path):
    """A user's folder: a plug-in package and a results root; commands run as fresh processes."""
    return _user_folder(tmp_path)


def cli(cwd, *args, timeout=300):
    env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


NAME = "my_table1"  # a copy with a name of its own (one keeping the bundled name is warned about)


def write_suite(folder, methods, **changes):
    doc = resolved("table1_three_task")
    doc["name"] = NAME
    doc["methods"] = methods
    doc.update(changes)
    path = folder / "my_table1.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def run(user, suite, *extra):
    return cli(user, "run", suite, "--steps", "2", "--results", "r", "--quiet", *extra)


def cells(user) -> dict:
    latest = user / "r" / NAME / "mini"
    doc = json.loads((latest / (latest / "LATEST").read_text().strip() / "results.json").read_text())
    return {m: {c: v["values"] for c, v in cols.items()} for m, cols in doc["cells"].items()}


def state(user) -> tuple:
    """What a failed command must leave as it was: the published runs and the cached cells."""
    base = user / "r" / NAME / "mini"
    runs = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    db = user / "r" / "results.sqlite"
    with sqlite3.connect(db) as conn:
        n = conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    return runs, n


# -- silent wrong results -----------------------------------------------------------------------


def test_editing_a_plugin_recomputes_its_row(user):
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}])
    first = run(user, suite)
    assert first.returncode == 0, first.stderr
    again = cli(user, "run", suite, "--steps", "2", "--results", "r")
    assert "[Mine] all 5 columns already computed from identical inputs; reused" in again.stdout
    before = cells(user)
    (user / "my_pkg" / "restorer.py").write_text(PLUGIN.format(shift=0.05))  # the model now computes something else
    edited = cli(user, "run", suite, "--steps", "2", "--results", "r")
    assert edited.returncode == 0, edited.stderr
    assert "already computed" not in edited.stdout and "[Mine]" in edited.stdout and "training 2 steps" in edited.stdout
    after = cells(user)
    assert after["Mine"]["sots"]["psnr_y"] != before["Mine"]["sots"]["psnr_y"]
    # --recompute ignores the cache even when nothing changed
    forced = cli(user, "run", suite, "--steps", "2", "--results", "r", "--recompute")
    assert forced.returncode == 0 and "training 2 steps" in forced.stdout and "reused" not in forced.stdout
    assert cells(user) == after  # same inputs, same numbers


def test_a_suite_copy_shows_its_own_printed_rows(user):
    doc_rows = resolved("table1_three_task")["reported"]
    doc_rows[-1]["cells"]["sots"] = [12.34, 0.5]  # an edited printed row
    doc_rows.append({"method": "MyPaperNet", "params": "1M", "average": [40.0, 0.99],
                     "cells": {c: [40.0, 0.99] for c in ("sots", "rain100l", "bsd68_s15", "bsd68_s25", "bsd68_s50")}})
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}],
                        name="my_copy_of_table1", reported=doc_rows)
    proc = run(user, suite)
    assert proc.returncode == 0, proc.stderr
    run_dir = next((user / "r" / "my_copy_of_table1" / "mini").glob("2*"))
    text = (run_dir / "table.txt").read_text()
    assert "12.34 / 0.500" in text and "MyPaperNet" in text and "31.50 / 0.982" not in text
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["suite"] == "my_copy_of_table1" and doc["suite_document"]["reported"][-1]["method"] == "MyPaperNet"
    # report and compare read the suite from the run, not from the installed suites
    page = cli(user, "report", run_dir, "--no-figures", "--out", user / "page.html")
    assert page.returncode == 0, page.stderr
    assert "MyPaperNet" in (user / "page.html").read_text()
    cmp = cli(user, "compare", run_dir, "--against", "paper")
    assert cmp.returncode == 0 and "12.34 / 0.500" in cmp.stdout and "MyPaperNet" in cmp.stdout


def test_a_nan_loss_stops_training_and_nothing_is_stored(user):
    suite = write_suite(user, [{"name": "Good", "build": "my_pkg.restorer:build"},
                               {"name": "Poisoned", "build": "my_pkg.restorer:build", "kwargs": {"poison": True}}])
    proc = run(user, suite)
    one_line_error(proc, 2, "training Poisoned", "non-finite at step 1", "last finite loss none", "nothing was saved")
    assert not (user / "r" / NAME).exists()  # nothing published
    runs, n_cells = state(user)
    assert n_cells == 5  # the good row's cells stay for the rerun; none of the poisoned row
    with sqlite3.connect(user / "r" / "results.sqlite") as conn:
        stored = [json.loads(r[0]) for r in conn.execute("SELECT per_image FROM cells")]
        status = conn.execute("SELECT status FROM runs").fetchall()
    assert all(all(v == v for rec in cell for v in rec.values() if isinstance(v, float)) for cell in stored)
    assert status == [("failed",)]
    models = list((user / "r" / "models").glob("*.safetensors"))
    assert len(models) == 1  # the good row's weights only
    rerun = run(user, suite)
    assert rerun.returncode == 2 and "non-finite" in rerun.stderr  # never reused, refused again


def test_a_non_finite_restored_image_names_method_column_and_image(user):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    sys.path.insert(0, str(user))
    try:
        from my_pkg.restorer import Nan
        save_file(Nan().state_dict(), str(user / "w.safetensors"))
    finally:
        sys.path.remove(str(user))
    suite = write_suite(user, [{"name": "NaNNet", "build": "my_pkg.restorer:build_nan",
                                "checkpoint": str(user / "w.safetensors")}])
    proc = run(user, suite)
    one_line_error(proc, 2, "method 'NaNNet' restored column 'sots', image 'astronaut' with NaN or Inf")
    assert state(user)[1] == 0


def test_an_untrained_model_or_an_empty_table_is_never_published(user):
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}])
    for steps in ("0", "-5"):
        proc = cli(user, "run", suite, "--steps", steps, "--results", "r")
        one_line_error(proc, 2, f"--steps {steps}")
    empty = write_suite(user, [])
    one_line_error(cli(user, "run", empty, "--results", "r"), 2, "methods is empty")
    one_line_error(cli(user, "validate", empty), 2, "methods is empty")
    assert not (user / "r").exists()


def test_results_json_is_strict_json(user):
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}])
    assert run(user, suite).returncode == 0

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    run_dir = next((user / "r" / NAME / "mini").glob("2*"))
    json.loads((run_dir / "results.json").read_text(), parse_constant=refuse)


@pytest.mark.parametrize("change, needle", [
    ({"columns": [{"id": "x", "group": "G", "label": "L", "task": "dehaze", "dataset": "sots_indoor"}]},
     "unknown dataset 'sots_indoor'"),
    ({"metrics": ["psnr_y", "lpips"]}, "unknown metric protocol(s) ['lpips']"),
    ({"methods": [{"name": "A", "model": "restormer"}]}, "unknown method 'restormer'"),
    ({"methods": [{"name": "A", "build": "no_such_pkg.mod:build"}]}, "cannot import module 'no_such_pkg.mod'"),
    ({"methods": [{"name": "A", "outputs": "no/such/folder"}]}, "no/such/folder' does not exist"),
    ({"methods": [{"name": "A", "model": "airnet", "train": {"mini": {"batch_size": 0}}}]},
     "method 'A': train.mini.batch_size: Input should be greater than 0"),
    ({"average": "mean_of_columns"}, "average: this key was removed"),
])
def test_validate_refuses_what_run_refuses(user, change, needle):
    doc = resolved("table1_three_task")
    doc["name"] = NAME
    doc.update(change)
    if "columns" in change:
        doc["reported"] = []
    path = user / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    validate = cli(user, "validate", path)
    ran = cli(user, "run", path, "--results", "r", "--steps", "1")
    one_line_error(validate, 2, needle)
    one_line_error(ran, 2, needle)
    assert validate.stderr == ran.stderr and not (user / "r").exists()


# -- errors a user meets: one line, the documented exit code, earlier results intact ----------------


def _with_results(user):
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}])
    assert run(user, suite).returncode == 0
    return user, suite, state(user)


@pytest.fixture()
def with_results(user):
    """A results root holding one complete run (the Mine row), to prove that bad commands leave it intact."""
    return _with_results(user)


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    """The same, once for the many bad inputs that must leave it as it is."""
    return _with_results(_user_folder(tmp_path_factory.mktemp("user")))


def _bad_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(8)}, str(folder / "ok.safetensors"))
    raw = (folder / "ok.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(raw[: len(raw) - 5])
    (folder / "text.pt").write_text("these are not weights\n")
    torch.save({"a": torch.zeros(8)}, folder / "ok.pt")
    raw = (folder / "ok.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (folder / "adir").mkdir()
    import types

    torch.save({"a": torch.zeros(8), "config": types.SimpleNamespace(width=4)}, folder / "glob.pt")
    return {p.name: p for p in folder.iterdir()}


@pytest.mark.parametrize("args, code, needles", [
    (["run", "{suite}", "--seed", "-1"], 2, ["--seed -1"]),
    (["run", "{suite}", "--device", "tpu"], 2, ["--device 'tpu'"]),
    (["run", "{suite}", "--device", "cuda"], 2, ["no CUDA device is available here"]),
    (["run", "{suite}", "--micro-batch", "0"], 2, ["--micro-batch 0"]),
    (["run", "{suite}", "--tile", "abc"], 2, ["--tile expects SIZE or SIZE:OVERLAP"]),
    (["run", "{suite}", "--tile", "64:64"], 2, ["must be smaller than inference.tile"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/truncated.safetensors"], 2,
     ["truncated.safetensors' is not a readable .safetensors file"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/text.pt"], 2, ["text.pt' cannot be read as a torch checkpoint"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/truncated.pt"], 2, ["truncated.pt' cannot be read as a torch"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/adir"], 2, ["adir' is a directory"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/ok.pt"], 2, ["does not match the model"]),
    (["run", "{suite}", "--checkpoints", "Nobody={files}/ok.pt"], 2, ["--checkpoints names row 'Nobody'"]),
    (["run", "{suite}", "--methods", "Mine", "Nobody"], 2, ["has no method 'Nobody'"]),
    (["profile", "dacode", "--size", "0"], 2, ["--size 0"]),
    (["profile", "dacode", "--device", "tpu"], 2, ["--device 'tpu'"]),
    (["data", "check", "table1_three_task", "--profile", "huge"], 2, ["unknown profile 'huge'"]),
    (["gate", "{run}", "--golden", "{files}/ok.safetensors"], 2, ["ok.safetensors: not valid JSON"]),
    (["gate", "{run}", "--golden", "g.json", "--tol-psnr", "nan"], 2, ["--tol-psnr nan: a tolerance is a finite"]),
    (["gate", "{run}", "--golden", "{files}/adir", "--update"], 2, ["adir' is a directory; give a file name"]),
    (["compare", "{run}", "--out", "{files}/adir"], 2, ["adir' is a directory; give a file name"]),
    (["run", "{suite}", "--data-root", "{files}"], 2, ["--data-root is for a profile on benchmark data"]),
    (["run", "{suite}", "--seed", str(2**70)], 2, ["a seed is an integer from 0 to 2**63 - 1"]),
    (["run", "{suite}", "--checkpoints", "Mine={files}/glob.pt"], 2, ["names classes beyond tensors", "trust_pickle"]),
])
def test_bad_input_is_one_line_and_harms_nothing(shared_results, tmp_path, args, code, needles):
    user, suite, before = shared_results
    files = _bad_files(tmp_path)
    run_dir = next((user / "r" / NAME / "mini").glob("2*"))
    argv = [a.format(suite=suite, files=tmp_path, run=run_dir) for a in args]
    if argv[0] == "run":
        argv += ["--steps", "2", "--results", "r"]
    proc = cli(user, *argv)
    one_line_error(proc, code, *needles)
    assert state(user) == before
    assert files  # the fixtures were written


def test_methods_option_on_a_suite_with_build_and_outputs_rows(with_results):
    user, suite, _ = with_results
    doc = yaml.safe_load(suite.read_text())
    doc["methods"].append({"name": "Folder", "outputs": str(user / "outs")})
    (user / "outs").mkdir()
    suite.write_text(yaml.safe_dump(doc, allow_unicode=True))
    proc = cli(user, "run", suite, "--methods", "Mine", "--steps", "2", "--results", "r", "--quiet")
    assert proc.returncode == 0, proc.stderr  # the README's own "add your method" flow


def test_plugin_that_raises_or_returns_the_wrong_shape(user):
    raises = write_suite(user, [{"name": "Boom", "build": "my_pkg.restorer:build_raises"}])
    one_line_error(run(user, raises), 2, "method 'Boom': its builder raised RuntimeError: the GPU kernel is not compiled")
    wrong = write_suite(user, [{"name": "Gray", "build": "my_pkg.restorer:build_wrong"}])
    one_line_error(run(user, wrong), 2, "method 'Gray' returned 1×1×64×64 for input 1×3×64×64")


def test_damaged_results_database_is_named_and_left_alone(with_results):
    user, suite, _ = with_results
    db = user / "r" / "results.sqlite"
    for damage in (lambda raw: raw[: len(raw) // 3], lambda raw: b"junk" * 1000):
        raw = db.read_bytes()
        for side in ("-wal", "-shm"):
            (user / "r" / f"results.sqlite{side}").unlink(missing_ok=True)
        db.write_bytes(damage(raw))
        damaged = db.read_bytes()
        proc = run(user, suite)
        one_line_error(proc, 2, "results database", "is damaged", "Move it aside")
        assert db.read_bytes() == damaged  # never deleted or rewritten
        db.write_bytes(raw)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_results_root_is_found_before_compute(with_results):
    user, suite, before = with_results
    os.chmod(user / "r", 0o555)
    try:
        one_line_error(run(user, suite), 2, "is not writable")
    finally:
        os.chmod(user / "r", 0o755)
    assert state(user) == before


def test_results_root_that_is_a_file(user):
    suite = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}])
    (user / "afile").write_text("x")
    one_line_error(cli(user, "run", suite, "--results", "afile", "--steps", "2"), 2, "--results 'afile' is a file")


def test_a_killed_run_is_marked_interrupted(with_results):
    user, suite, _ = with_results
    with sqlite3.connect(user / "r" / "results.sqlite") as conn:
        host = conn.execute("SELECT host FROM runs").fetchone()[0]
        conn.execute("INSERT INTO runs (run_id, pid, host, suite, suite_sha256, profile, seed, status, started_utc, "
                     "provenance) VALUES ('dead', 999999999, ?, 's', 'x', 'mini', 0, 'running', 'now', '{}')", (host,))
    assert run(user, suite).returncode == 0
    with sqlite3.connect(user / "r" / "results.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_id = 'dead'").fetchone()[0] == "interrupted"


@pytest.mark.parametrize("golden, needle", [
    ([1, 2], "expected a JSON object"),
    ({"golden_version": 1, "suite": "table1_three_task", "profile": "mini", "metrics": ["psnr_y"]}, "lacks 'cells'"),
    ({"golden_version": 1, "suite": "table1_three_task", "profile": "mini", "metrics": ["psnr_y"], "cells": {}},
     "holds no cells"),
    ({"golden_version": 1, "suite": "table1_three_task", "profile": "mini", "metrics": ["psnr_y"],
      "cells": {"A": {"sots": {"ssim_y": 0.9}}}}, "cells.A.sots has no finite number for psnr_y"),
    ({"golden_version": 1, "suite": "table1_three_task", "profile": "mini", "metrics": [], "cells": {"A": {}}},
     "'metrics' is empty"),
])
def test_gate_refuses_golden_files_that_cannot_catch_drift(with_results, golden, needle):
    user, _, _ = with_results
    (user / "golden.json").write_text(json.dumps(golden))
    one_line_error(cli(user, "gate", f"r/{NAME}/mini", "--golden", "golden.json"), 2, needle)


def test_readers_name_what_a_results_document_lacks(with_results):
    user, _, _ = with_results
    run_dir = next((user / "r" / NAME / "mini").glob("2*"))
    doc = json.loads((run_dir / "results.json").read_text())
    del doc["cells"]
    broken = user / "broken"
    broken.mkdir()
    (broken / "results.json").write_text(json.dumps(doc))
    for args in (["report", broken, "--no-figures"], ["compare", broken], ["gate", broken, "--golden", "g.json"]):
        one_line_error(cli(user, *args), 2, "not a valid results document: cells: Field required")


def test_an_internal_error_is_one_line_with_a_log(user, monkeypatch, capsys):
    from harness import cli as cli_module

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.chdir(user)
    monkeypatch.setattr(cli_module, "_cmd_suites", broken)
    code = cli_module.main(["suites"])
    err = capsys.readouterr().err
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert err.startswith("internal error: ZeroDivisionError: a bug; the traceback is in ")
    log = pathlib.Path(err.split("the traceback is in ")[1].split(" (please")[0])
    assert log.is_file() and "Traceback (most recent call last)" in log.read_text()


def test_golden_files_are_held_to_every_number(with_results):
    user, _, _ = with_results
    run_dir = f"r/{NAME}/mini"
    assert cli(user, "gate", run_dir, "--golden", "g.json", "--update").returncode == 0
    golden = json.loads((user / "g.json").read_text())
    golden["cells"]["Mine"]["sots"]["n_images"] = 500  # made on the full set, run on a subset
    (user / "g.json").write_text(json.dumps(golden))
    proc = cli(user, "gate", run_dir, "--golden", "g.json")
    assert proc.returncode == 1 and "Mine / sots: 4 images, the golden file has 500" in proc.stdout
    golden["cells"]["Mine"]["sots"]["n_images"] = 4
    golden["cells"]["Mine"]["sots"]["psnr_y"] = float("nan")
    (user / "g.json").write_text(json.dumps(golden))
    one_line_error(cli(user, "gate", run_dir, "--golden", "g.json"), 2, "cells.Mine.sots has no finite number")
    golden["cells"]["Mine"]["sots"]["psnr_y"] = 20.0
    golden["seed"] = 7
    (user / "g.json").write_text(json.dumps(golden))
    one_line_error(cli(user, "gate", run_dir, "--golden", "g.json"), 2, "made with seed 7")


def test_an_outputs_folder_with_two_files_for_one_image(user):
    from PIL import Image

    outs = user / "outs" / "sots"
    outs.mkdir(parents=True)
    for suffix in ("png", "jpg"):
        Image.new("RGB", (128, 128)).save(outs / f"astronaut.{suffix}")
    suite = write_suite(user, [{"name": "Folder", "outputs": "outs"}])  # relative: beside the suite file
    one_line_error(run(user, suite), 2, "holds two images for 'astronaut' (astronaut.jpg, astronaut.png)")


def test_internal_error_log_goes_to_the_results_root_or_the_temporary_folder(user, monkeypatch, capsys, tmp_path):
    import tempfile

    from harness import cli as cli_module

    monkeypatch.chdir(user)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(cli_module, "_cmd_gate", lambda args: 1 / 0)
    assert cli_module.main(["gate", "x", "--golden", "g.json"]) == 3
    assert (tmp_path / "tmp" / "dacode-bench-error.log").is_file() and not (user / "results").exists()
    monkeypatch.setattr(cli_module, "_cmd_run", lambda args: 1 / 0)
    assert cli_module.main(["run", "s", "--results", "mine"]) == 3
    assert (user / "mine" / "dacode-bench-error.log").is_file()
    capsys.readouterr()



def test_last_corners_a_new_user_found(user, tmp_path):
    """Each of these once ended in an internal error, a traceback or a silent surprise."""
    one_line_error(cli(user, "report", "nowhere", "--device", "tpu"), 2, "--device 'tpu'")
    (user / "afile").write_text("x")
    one_line_error(cli(user, "data", "download", "cdd11", "--dest", "afile", "--revision", "0" * 40), 2,
                   "--dest", "is a file")
    bad_kwarg = write_suite(user, [{"name": "A", "model": "airnet", "kwargs": {"n_featz": 16}}])
    one_line_error(cli(user, "validate", bad_kwarg), 2, "method 'A': bad constructor keywords", "n_featz")
    typed = write_suite(user, [{"name": "A", "model": "airnet", "kwargs": {"n_feats": "16"}}])
    one_line_error(cli(user, "validate", typed), 2, "check the types: n_feats='16' is a string")
    no_profiles = write_suite(user, [{"name": "A", "model": "airnet"}], profiles={})
    one_line_error(cli(user, "validate", no_profiles), 2, "needs at least one profile (profiles is empty)")
    (user / "my_pkg" / "constant.py").write_text(textwrap.dedent('''
        import torch

        class Constant(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.unused = torch.nn.Conv2d(3, 3, 1)

            def forward(self, x):
                return x * 0.5

        def build():
            return Constant()
    '''))
    constant = write_suite(user, [{"name": "Flat", "build": "my_pkg.constant:build"}])
    one_line_error(run(user, constant), 2, "training Flat: its loss does not depend on any trainable parameter")
    same_name = write_suite(user, [{"name": "Mine", "build": "my_pkg.restorer:build"}], name="table1_three_task")
    proc = run(user, same_name)
    assert proc.returncode == 0 and "warning:" in proc.stderr and "named 'table1_three_task' like the bundled" in proc.stderr
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
        one_line_error(cli(user, "gate", f"r/{NAME}/mini", "--golden", ro / "g.json", "--update"), 2,
                       "cannot write")


def test_a_cli_inference_policy_is_part_of_the_cell_key(tmp_path):
    """--noise-seeds and --tile change what a cell means: cells cached under another policy are not reused
    (the trained weights are), and the run says which policy its cells were computed under."""
    from harness.runner import run_suite

    def run_(**kw):
        messages = []
        outcome = run_suite("table1_three_task", profile="mini", results_root=tmp_path, steps=2, progress=False,
                            method_names=["MoCE-IR"], log=messages.append, **kw)
        return outcome.results, messages

    plain, _ = run_()
    seeded, log = run_(noise_seeds=3)
    assert not any("already computed" in m for m in log) and any("reusing weights trained earlier" in m for m in log)
    cell = seeded.cells["MoCE-IR"]["sots"]
    assert cell.n_seeds == 3 and cell.spread["psnr_y"] > 0
    assert seeded.method("MoCE-IR").noise_seeds == 3 and "3 noise seeds" in seeded.inference["description"]
    again, log = run_()  # the one-seed cells are still there, and are what this run shows
    assert any("all 5 columns already computed" in m for m in log)
    assert again.cells["MoCE-IR"]["sots"].n_seeds == 1 and again.method("MoCE-IR").noise_seeds == 1
    assert again.cells == plain.cells
    tiled, log = run_(tile=32, overlap=8)
    assert not any("already computed" in m for m in log)
    assert tiled.cells["MoCE-IR"]["sots"].values != plain.cells["MoCE-IR"]["sots"].values
