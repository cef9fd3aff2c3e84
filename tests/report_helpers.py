"""Fabricated results documents (harness.results.RunResults), for the report, compare and figure tests.

They are built the way the runner builds them (the stored suite, cells, averages, per-image
scores), with per-image numbers drawn around chosen cell means, so tables, significance marks
and the HTML report can be tested without training anything.
"""
from __future__ import annotations

import pathlib

import numpy as np

from harness.metrics import get_protocol
from harness.results import Cell, ImageScore, MethodResult, RunResults, dumps
from harness.suite import load_suite_document, suite_sha256

MINI_LABEL = "mini profile — synthetic degradations of bundled images, not comparable with the paper"
IMAGE_IDS = ("astronaut", "coffee", "chelsea", "rocket")


def fake_results(suite_name: str = "table1_three_task", *, profile: str = "mini", methods: list[str] | None = None,
                 offset: float = -6.0, seed: int = 0, extra: dict[str, float] | None = None,
                 image_ids=IMAGE_IDS, run_id: str = "20250101T000000-fake-1", document: dict | None = None
                 ) -> RunResults:
    """A results document of ``suite_name``: each method's cells are its printed numbers + ``offset`` dB
    (SSIM − 0.05) plus per-image noise; ``extra`` adds rows not in the suite (name → PSNR shift vs the
    last method). ``document``: the suite mapping to store instead of the installed file's."""
    suite, raw, path = load_suite_document(suite_name)
    if document is not None:
        from harness.suite import Suite

        suite, raw = Suite.model_validate(document), document
    rng = np.random.default_rng(seed)
    names = methods or suite.profiles[profile].methods or [m.name for m in suite.methods]
    printed = {r.method: r for r in suite.reported}
    keys = list(suite.metrics)

    def base(name: str, cid: str) -> tuple[float, float]:
        row = printed.get(name)
        if row is not None and cid in row.cells:
            return row.cells[cid]
        if row is not None and row.average:
            return row.average
        return (30.0, 0.9)

    per_image, rows = [], list(names)
    shifts = {n: 0.0 for n in names}
    for name, shift in (extra or {}).items():
        rows.append(name)
        shifts[name] = shift
    for name in rows:
        ref = names[-1] if name not in names else name
        for c in suite.columns:
            psnr, ssim = (*base(ref, c.id), 0.9)[:2]  # a printed row may hold one value (PSNR only)
            for i, image_id in enumerate(image_ids):
                per_image.append(ImageScore(
                    method=name, column=c.id, dataset=f"mini/{c.dataset}", task=c.task, sigma=c.sigma,
                    image_id=image_id, values={
                        k: (float(psnr + offset + shifts[name] + (i - 1.5) * 0.5 + rng.normal(0, 0.05)) if get_protocol(k).display == "PSNR"
                            else float(min(0.999, ssim - 0.05 + shifts[name] / 100 + rng.normal(0, 0.002))))
                        for k in keys}))
    cells, averages = {}, {}
    for name in rows:
        cells[name] = {}
        for c in suite.columns:
            recs = [r for r in per_image if r.method == name and r.column == c.id]
            cells[name][c.id] = Cell(n_images=len(recs), values={k: float(np.mean([r.values[k] for r in recs]))
                                                                 for k in keys})
        averages[name] = {k: float(np.mean([cells[name][c.id].values[k] for c in suite.columns])) for k in keys}
    prof = suite.profiles[profile]
    label = MINI_LABEL if profile == "mini" else prof.description
    entries = {m.name: m for m in suite.methods}
    method_docs = []
    for name in rows:
        entry = entries.get(name)
        method_docs.append(MethodResult(
            name=name, model=entry.model if entry else "tiny", citation=entry.citation if entry else None,
            params=12345, params_display="12.3K", train={"steps": 3, "final_loss": 0.1},
            method_key=f"key-{name}".replace(" ", "_")))
    return RunResults(
        run_id=run_id, suite=suite.name, suite_sha256=suite_sha256(raw), suite_file=str(path), suite_document=raw,
        title=f"{suite.source}: {suite.title}", source=suite.source, caption=suite.caption, profile=profile,
        profile_label=label, comparable_with_paper=prof.comparable_with_paper, seed=0, metrics=keys,
        show_params=suite.show_params, layout=suite.layout, columns=suite.columns,
        train={"steps": 3, "steps_run": 3},
        inference={"policy": suite.inference.model_dump(), "description": suite.inference.describe()},
        data={"protocol": suite.data.model_dump(), "source": "fake", "manifest_sha256": "m" * 64,
              "columns": {c.id: {"dataset": f"mini/{c.dataset}", "n_images": len(image_ids)} for c in suite.columns}},
        methods=method_docs, cells=cells, averages=averages,
        provenance={"created_utc": "2025-01-01T00:00:00+00:00", "git_commit": "abc123", "python": "3.11",
                    "platform": "Linux", "packages": {"torch": "2.x"}, "device": "cpu", "torch_threads": 2,
                    "cuda": None},
        timings={"data_s": 0.1, "train_s": 1.0, "eval_s": 0.5, "metrics_s": 0.2, "render_s": 0.01},
        per_image=per_image,
    )


def small_results(columns: list[dict], values: dict[str, list[tuple[float, ...]]], *, metrics=("psnr_y", "ssim_y"),
                  per_image: list[dict] | None = None, show_params: bool = True, caption: str = "C",
                  title: str = "T", params: str = "0.12M") -> RunResults:
    """A minimal document: ``columns`` ({id, group, label}), per method one tuple of metric values per
    column; ``per_image``: flat rows {method, column, image_id, <metric>: v}."""
    cols = [{"task": "dehaze", "dataset": "sots_outdoor", **c} for c in columns]
    names = list(values)
    doc = {"name": "small", "title": title, "source": "test", "caption": caption, "metrics": list(metrics),
           "columns": cols, "show_params": show_params,
           "methods": [{"name": n, "model": "dacode"} for n in names],
           "profiles": {"mini": {"description": MINI_LABEL, "comparable_with_paper": False,
                                 "train": {"steps": 1, "batch_size": 1, "patch_size": 8, "lr": 1e-3}}}}
    from harness.suite import Suite

    suite = Suite.model_validate(doc)
    cells = {m: {c.id: Cell(n_images=1, values=dict(zip(metrics, v))) for c, v in zip(suite.columns, vals)}
             for m, vals in values.items()}
    averages = {m: {k: float(np.mean([cells[m][c.id].values[k] for c in suite.columns])) for k in metrics}
                for m in names}
    scores = [ImageScore(method=r["method"], column=r["column"], dataset="d", task="dehaze", image_id=r["image_id"],
                         values={k: r[k] for k in metrics}) for r in (per_image or [])]
    return RunResults(
        run_id="r", suite="small", suite_sha256="0" * 64, suite_document=doc, title=title, source="test",
        caption=caption, profile="mini", profile_label=MINI_LABEL, comparable_with_paper=False, seed=0,
        metrics=list(metrics), show_params=show_params, columns=suite.columns,
        methods=[MethodResult(name=n, params_display=params) for n in names], cells=cells, averages=averages,
        per_image=scores)


def write_run(root: pathlib.Path, doc: RunResults) -> pathlib.Path:
    """Store ``doc`` as a published run folder ``root/<suite>/<profile>/<run id>/results.json``."""
    run_dir = pathlib.Path(root) / doc.suite / doc.profile / doc.run_id
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(dumps(doc))
    (run_dir.parent / "LATEST").write_text(doc.run_id + "\n")
    return run_dir
