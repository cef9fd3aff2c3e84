"""Multi-process training (torchrun, DistributedDataParallel, gloo on the CPU) equals one process."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from harness.data.mini import MiniPatchSampler
from harness.train import train

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent('''
    import sys, torch
    import harness
    from harness.data.mini import MiniPatchSampler
    from harness.train import train, distributed_context

    def tiny():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))

    model = tiny()
    sampler = MiniPatchSampler([("denoise", 25.0), ("derain", None)])
    micro = None if sys.argv[2] == "none" else int(sys.argv[2])
    train(model, sampler, steps=5, batch_size=4, patch_size=24, lr=1e-2, seed=7, micro_batch=micro)
    rank, world = distributed_context()
    if rank == 0:
        torch.save({"state": model.state_dict(), "world": world}, sys.argv[1])
    torch.distributed.destroy_process_group()
''')


@pytest.mark.parametrize("micro", ["none", "1"])
def test_two_gloo_processes_match_one(tmp_path, micro):
    """Also with gradient accumulation: each rank runs its 2 samples as 2 micro-batches of 1."""
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "ddp.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(out),
         micro],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    assert ddp["world"] == 2

    torch.manual_seed(0)
    single = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    train(single, MiniPatchSampler([("denoise", 25.0), ("derain", None)]), steps=5, batch_size=4, patch_size=24,
          lr=1e-2, seed=7)
    for key, value in single.state_dict().items():
        assert not torch.equal(value, initial[key])  # it trained
        # same patches, gradients averaged over the two halves of the batch: equal up to float order
        assert torch.allclose(ddp["state"][key], value, atol=1e-5, rtol=1e-4), key


def test_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    import harness.train as t

    monkeypatch.setattr(t, "distributed_context", lambda: (0, 3))
    with pytest.raises(ValueError, match="global batch 4 is not divisible by the 3 processes"):
        t.train(torch.nn.Conv2d(3, 3, 1), MiniPatchSampler([("denoise", 15.0)]), steps=1, batch_size=4,
                patch_size=8, lr=1e-3)


def test_torchrun_the_whole_cli(tmp_path):
    """`torchrun -m harness run ...`: both ranks train, rank 0 alone evaluates and publishes."""
    from harness.runner import run_suite

    results = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness",
         "run", "table1_three_task", "--methods", "DACode", "--steps", "3", "--results", str(results), "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error:" in line]
    assert proc.returncode == 0, "\n".join(errors[:20]) + "\n" + proc.stderr[-2000:]
    runs = list((results / "table1_three_task" / "mini").glob("2*"))
    assert len(runs) == 1 and proc.stdout.count("results: ") == 1
    ddp = json.loads((runs[0] / "results.json").read_text())
    single = run_suite("table1_three_task", method_names=["DACode"], steps=3, results_root=tmp_path / "one",
                       progress=False, log=lambda *a: None).results
    for column, cell in single.cells["DACode"].items():
        assert ddp["cells"]["DACode"][column]["values"]["psnr_y"] == pytest.approx(cell.values["psnr_y"], abs=0.05), column
