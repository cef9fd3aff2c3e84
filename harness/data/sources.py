"""One entry point from the runner into the data layer: ``prepare(suite, profile, ...)``.

It validates the data before any compute is spent and returns the test sets (one per
column, in column order), the training patch sampler and what to record about the data.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

from harness.data import PatchSampler, TestSet


@dataclass
class PreparedData:
    test_sets: list[TestSet]
    sampler: PatchSampler
    label: str  # shown on every artefact (the mini profile's "not comparable" label)
    provenance: dict = field(default_factory=dict)  # crop policy, noise mode, manifest hash, ...


def prepare(suite, profile: str, data_root: pathlib.Path | None, seed: int) -> PreparedData:
    from harness.data import mini as mini_data

    column_tasks = [(c.task, c.sigma) for c in suite.columns]
    if profile == "mini":
        test_sets = [mini_data.test_set(c.id, c.dataset, c.task, c.sigma, seed=seed) for c in suite.columns]
        return PreparedData(test_sets, mini_data.MiniPatchSampler(column_tasks), mini_data.LABEL,
                            {"source": "bundled scikit-image images, synthetic degradations"})
    from harness.data import paper as paper_data

    for c in suite.columns:
        paper_data.require_known(c.dataset, c.task)
    paper_data.check_data_root(data_root, [c.dataset for c in suite.columns], [c.task for c in suite.columns])
    test_sets = [paper_data.test_set(data_root, c.id, c.dataset, c.sigma, seed=seed) for c in suite.columns]
    return PreparedData(test_sets, paper_data.PaperPatchSampler(data_root, column_tasks),
                        suite.profiles[profile].description,
                        {"source": str(data_root), "crop_multiple": paper_data.CROP_BASE})
