"""Does the paper agree with itself? Recompute every reported Average and textual claim.

The paper's numbers are kept exactly as printed; this module only lists where they disagree:
an Average that is not the mean of its row's columns at the printed precision, or a
difference stated in the text that the table does not show.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.metrics import get_protocol
from harness.suite import Suite


@dataclass(frozen=True)
class Disagreement:
    suite: str
    where: str
    printed: float
    recomputed: float
    decimals: int

    def __str__(self) -> str:
        d = self.decimals
        return f"{self.suite}: {self.where}: printed {self.printed:.{d}f}, recomputed {self.recomputed:.{d + 2}f}"


def check_suite(suite: Suite) -> list[Disagreement]:
    found: list[Disagreement] = []
    column_ids = [c.id for c in suite.columns]
    protocols = [get_protocol(m) for m in suite.metrics]
    decimals = [p.decimals for p in protocols]  # as printed: PSNR 2, SSIM 3
    names = [p.display for p in protocols]
    for row in suite.reported:
        if row.metrics and list(row.metrics) != list(suite.metrics):
            continue  # printed under another protocol: its own paper's averages are not ours to check
        if row.average is None or set(row.cells) != set(column_ids):
            continue  # averages only (ablations) or a partial row: nothing to recompute
        for k in range(len(protocols)):
            mean = sum(row.cells[c][k] for c in column_ids) / len(column_ids)
            # tolerate the half-unit of printing plus float noise
            if abs(mean - row.average[k]) > 0.5 * 10 ** -decimals[k] + 1e-9:
                found.append(Disagreement(suite.name, f"{row.method} Average {names[k]}",
                                          row.average[k], round(mean, decimals[k] + 2), decimals[k]))
    averages = {r.method: r.average for r in suite.reported if r.average is not None}
    for claim in suite.claims:
        k = claim.metric
        shown = averages[claim.minuend][k] - averages[claim.subtrahend][k]
        if abs(shown - claim.value) > 0.5 * 10 ** -decimals[k] + 1e-9:
            found.append(Disagreement(
                suite.name, f"{claim.where} says \"{claim.statement}\" ({claim.minuend} − {claim.subtrahend}, "
                f"{names[k]})", claim.value, round(shown, decimals[k]), decimals[k]))
    return found
