"""Fabricated results documents in the runner's schema, for the report, compare and figure tests.

They follow harness/runner.py's ``results`` dict (same keys), with per-image numbers drawn
around chosen cell means, so tables, significance marks and the HTML report can be tested
without training anything.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from harness.store import SCHEMA_VERSION
from harness.suite import load_suite

MINI_LABEL = "mini profile — synthetic degradations of bundled images, not comparable with the paper"
IMAGE_IDS = ("astronaut", "coffee", "chelsea", "rocket")


def fake_results(suite_name: str = "table1_three_task", *, profile: str = "mini", methods: list[str] | None = None,
                 offset: float = -6.0, seed: int = 0, extra: dict[str, float] | None = None,
                 image_ids=IMAGE_IDS, run_id: str = "20250101T000000-fake-1") -> dict:
    """A results document of ``suite_name``: each method's cells are its printed numbers + ``offset`` dB
    (SSIM − 0.05) plus per-image noise; ``extra`` adds rows not in the suite (name → PSNR shift vs the
    last method)."""
    suite = load_suite(suite_name)
    rng = np.random.default_rng(seed)
    names = methods or suite.profiles[profile].methods or [m.name for m in suite.methods]
    printed = {r.method: r for r in suite.reported}
    keys = list(suite.metrics)
    columns = [c.model_dump() for c in suite.columns]

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
        for c in columns:
            psnr, ssim = base(ref, c["id"])
            for i, image_id in enumerate(image_ids):
                per_image.append({
                    "method": name, "column": c["id"], "dataset": f"mini/{c['dataset']}", "task": c["task"],
                    "sigma": c.get("sigma"), "image_id": image_id,
                    keys[0]: float(psnr + offset + shifts[name] + (i - 1.5) * 0.5 + rng.normal(0, 0.05)),
                    keys[1]: float(min(0.999, ssim - 0.05 + shifts[name] / 100 + rng.normal(0, 0.002))),
                })
    cells, averages = {}, {}
    for name in rows:
        cells[name] = {}
        for c in columns:
            recs = [r for r in per_image if r["method"] == name and r["column"] == c["id"]]
            cells[name][c["id"]] = {**{k: float(np.mean([r[k] for r in recs])) for k in keys}, "n_images": len(recs)}
        averages[name] = {k: float(np.mean([cells[name][c["id"]][k] for c in columns])) for k in keys}
    comparable = suite.profiles[profile].comparable_with_paper
    label = MINI_LABEL if profile == "mini" else suite.profiles[profile].description
    entries = {m.name: m for m in suite.methods}
    method_docs = []
    for name in rows:
        entry = entries.get(name)
        method_docs.append({
            "name": name, "model": entry.model if entry else "tiny", "build": None, "outputs": None,
            "citation": entry.citation if entry else None, "overrides": {}, "checkpoint": None,
            "params": 12345, "params_display": "0.01M", "train": {"steps": 3, "final_loss": 0.1},
            "method_key": f"key-{name}".replace(" ", "_"),
        })
    return {
        "schema_version": SCHEMA_VERSION, "suite": suite.name, "suite_sha256": "0" * 64, "source": suite.source,
        "title": f"{suite.source}: {suite.title}", "caption": suite.caption, "profile": profile,
        "profile_label": label, "comparable_with_paper": comparable, "seed": 0, "metrics": keys,
        "show_params": suite.show_params, "layout": suite.layout.model_dump(), "columns": columns,
        "train": {"steps": 3, "steps_run": 3}, "run_id": run_id,
        "data": {"protocol": suite.data.model_dump(), "source": "fake", "manifest_sha256": "m" * 64,
                 "columns": {c["id"]: {"dataset": f"mini/{c['dataset']}", "n_images": len(image_ids)} for c in columns}},
        "methods": method_docs, "cells": cells, "averages": averages,
        "footnotes": ["PSNR: protocol 'psnr_y'.", f"{label}."] if profile == "mini" else ["PSNR: protocol 'psnr_y'."],
        "provenance": {"created_utc": "2025-01-01T00:00:00+00:00", "git_commit": "abc123", "python": "3.11",
                       "platform": "Linux", "packages": {"torch": "2.x"}, "device": "cpu", "torch_threads": 2,
                       "cuda": None},
        "timings": {"data_s": 0.1, "train_s": 1.0, "eval_s": 0.5, "metrics_s": 0.2, "render_s": 0.01},
        "per_image": per_image,
    }


def write_run(root: pathlib.Path, doc: dict) -> pathlib.Path:
    """Store ``doc`` as a published run folder ``root/<suite>/<profile>/<run id>/results.json``."""
    run_dir = pathlib.Path(root) / doc["suite"] / doc["profile"] / doc["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(doc, ensure_ascii=False))
    (run_dir.parent / "LATEST").write_text(doc["run_id"] + "\n")
    return run_dir
