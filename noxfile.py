"""nox sessions for dacode-bench.

All sessions share ONE virtual environment (``.nox/dacode-env``): torch alone is ~1.4 GB,
so building it once per session would waste minutes and disk. The environment is
(re)installed only when the install recipe below or ``pyproject.toml``'s dependencies
change (a stamp file records their hash), so a second run starts in seconds.

Install recipe (why each step: docs/dependencies.md):
1. torch and torchvision pinned in ONE pip call. On a GPU-less x86_64 machine
   ``torch==2.13.0`` resolves to the local CPU build; an unpinned torch pulls multi-GB CUDA
   wheels. Users with a CUDA machine set ``DACODE_TORCH_SPEC`` (see README).
2. pyiqa with ``--no-deps`` (its full dependency set is ~2.5 GB we never import),
3. the rest of pyproject's dependencies, then the project itself (editable, no deps).
4. A CUDA build of torch on a machine without a GPU is refused at once.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sys

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]

ROOT = pathlib.Path(__file__).resolve().parent
ENV_DIR = ROOT / ".nox" / "dacode-env"
TORCH_SPEC = os.environ.get("DACODE_TORCH_SPEC", "torch==2.13.0 torchvision==0.28.0").split()
PYIQA_SPEC = "pyiqa==0.1.16"
# Installed by step 1/2 above, so step 3 must not resolve them again.
SEPARATELY_INSTALLED = ("torch", "torchvision", "pyiqa")

CHECK_TORCH = str(ROOT / ".ci" / "check_torch.py")


def _project_dependencies() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(meta["dependencies"]) + list(meta["optional-dependencies"]["test"])

    def base_name(req: str) -> str:
        for sep in "=<>![ ;":
            req = req.split(sep)[0]
        return req.strip().lower()

    return [d for d in deps if base_name(d) not in SEPARATELY_INSTALLED]


def _env_python() -> pathlib.Path:
    return ENV_DIR / "bin" / "python"


def shared_env(session: nox.Session) -> pathlib.Path:
    """Create or reuse the shared environment; return its bin directory."""
    deps = _project_dependencies()
    recipe = "\n".join([*TORCH_SPEC, PYIQA_SPEC, *deps])
    stamp_value = hashlib.sha256(recipe.encode()).hexdigest()
    stamp = ENV_DIR / ".install-stamp"
    python = str(_env_python())
    if not (stamp.exists() and stamp.read_text() == stamp_value and _env_python().exists()):
        session.log(f"installing the shared environment in {ENV_DIR}")
        if not _env_python().exists():
            session.run(sys.executable, "-m", "venv", str(ENV_DIR), external=True)
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        session.run(*pip, *TORCH_SPEC, external=True)
        session.run(python, CHECK_TORCH, external=True)
        session.run(*pip, "--no-deps", PYIQA_SPEC, external=True)
        session.run(*pip, *deps, external=True)
        session.run(*pip, "--no-deps", "-e", str(ROOT), external=True)
        stamp.write_text(stamp_value)
    else:
        session.log(f"reusing the shared environment in {ENV_DIR}")
    session.run(python, CHECK_TORCH, external=True)
    return ENV_DIR / "bin"


@nox.session(name="env")
def env(session: nox.Session) -> None:
    """Build (or check) the shared environment and nothing else: CI builds it once before it runs
    two sessions side by side."""
    shared_env(session)


@nox.session(name="tests")
def tests(session: nox.Session) -> None:
    """Lint (ruff: pyflakes, import order, pycodestyle errors), then run the test suite (CPU, offline).

    Tests run in one worker per core (pytest-xdist), each with its share of the cores (tests/conftest.py
    sets OMP_NUM_THREADS); on 2 cores this took 7 min against 17.5 min with oversubscribed threads.
    `-- -n 0` runs serially."""
    bin_dir = shared_env(session)
    session.run(str(bin_dir / "python"), "-m", "ruff", "check", str(ROOT), external=True)
    session.run(str(bin_dir / "python"), "-m", "pytest", "-n", "auto", "--dist", "load", *session.posargs,
                external=True)


SUITES = {
    "reproduce-table1": "table1_three_task",
    "reproduce-table2": "table2_five_task",
    "reproduce-table3": "table3_cdd11",
    "reproduce-table4": "table4_nc_ablation",
    "reproduce-table5": "table5_adaptation",
    "reproduce-released": "released_checkpoints",
}


def _reproduce(suite: str):
    def session_fn(session: nox.Session) -> None:
        bin_dir = shared_env(session)
        session.run(str(bin_dir / "dacode-bench"), "run", suite, *session.posargs, external=True)

    session_fn.__doc__ = (
        f"Run suite {suite} (default profile 'mini', offline). Pass options after --, e.g. "
        "`-- --profile paper --data-root DIR`, `-- --methods DACode`, `-- --checkpoints DACode=weights.safetensors`."
    )
    return session_fn


for _name, _suite in SUITES.items():
    nox.session(name=_name)(_reproduce(_suite))


GOLDEN_TABLE1 = ROOT / "tests" / "golden" / "table1_mini.json"


@nox.session(name="gate-table1")
def gate_table1(session: nox.Session) -> None:
    """CI regression gate: the mini Table 1 run must match the committed golden file.

    `nox -s gate-table1 -- --update` rewrites the golden file after an intended change.
    """
    bin_dir = shared_env(session)
    results = ROOT / "results" / "gate"
    session.run(str(bin_dir / "dacode-bench"), "run", "table1_three_task", "--results", str(results), "--quiet",
                external=True)
    session.run(str(bin_dir / "dacode-bench"), "gate", str(results / "table1_three_task" / "mini"),
                "--golden", str(GOLDEN_TABLE1), *session.posargs, external=True)


@nox.session(name="gpu-check")
def gpu_check(session: nox.Session) -> None:
    """One unattended check on a CUDA machine (speed, memory, GPU/CPU and bf16/fp32 agreement) writing
    results/gpu-check.json; without CUDA it says so and exits 0. Install a CUDA torch first
    (DACODE_TORCH_SPEC, README)."""
    bin_dir = shared_env(session)
    session.run(str(bin_dir / "python"), str(ROOT / "benchmarks" / "gpu_check.py"), *session.posargs, external=True)

