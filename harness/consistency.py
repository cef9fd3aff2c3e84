"""Does the paper agree with itself? Recompute every reported Average and textual claim.

The paper's numbers are kept exactly as printed; this module only lists where they disagree:
an Average that is not the mean of its row's columns at the printed precision, or a
difference stated in the text that the table does not show.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.suite import Suite

# The paper prints PSNR with 2 decimals and SSIM with 3.
DECIMALS = (2, 3)
METRIC_NAMES = ("PSNR", "SSIM")


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
    for row in suite.reported:
        if row.average is None or set(row.cells) != set(column_ids):
            continue  # averages only (ablations) or a partial row: nothing to recompute
        for k in (0, 1):
            mean = sum(row.cells[c][k] for c in column_ids) / len(column_ids)
            # tolerate the half-unit of printing plus float noise
            if abs(mean - row.average[k]) > 0.5 * 10 ** -DECIMALS[k] + 1e-9:
                found.append(Disagreement(suite.name, f"{row.method} Average {METRIC_NAMES[k]}",
                                          row.average[k], round(mean, DECIMALS[k] + 2), DECIMALS[k]))
    averages = {r.method: r.average for r in suite.reported if r.average is not None}
    for claim in suite.claims:
        k = claim.metric
        shown = averages[claim.minuend][k] - averages[claim.subtrahend][k]
        if abs(shown - claim.value) > 0.5 * 10 ** -DECIMALS[k] + 1e-9:
            found.append(Disagreement(
                suite.name, f"{claim.where} says \"{claim.statement}\" ({claim.minuend} − {claim.subtrahend}, "
                f"{METRIC_NAMES[k]})", claim.value, round(shown, DECIMALS[k]), DECIMALS[k]))
    return found
