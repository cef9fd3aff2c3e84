"""Table rendering: the paper's cell format, best/second marks, escaping and the profile label."""
import subprocess
import shutil

import pytest

from harness import report

LABEL = "mini profile — synthetic degradations of bundled images, not comparable with the paper"


def _result(method_names=("A & B", "<b>x</b>", "C_1")):
    columns = [
        {"id": "sots", "group": "Dehazing", "label": "SOTS"},
        {"id": "s15", "group": "Denoising on BSD68", "label": "σ = 15"},
        {"id": "s25", "group": "Denoising on BSD68", "label": "σ = 25"},
    ]
    values = {  # (psnr, ssim) per column
        method_names[0]: [(30.0, 0.950), (33.0, 0.9), (31.0, 0.88)],
        method_names[1]: [(31.0, 0.940), (33.004, 0.91), (30.0, 0.87)],
        method_names[2]: [(29.0, 0.960), (32.0, 0.92), (29.0, 0.86)],
    }
    cells = {m: {c["id"]: {"psnr_y": v[0], "ssim_y": v[1]} for c, v in zip(columns, vals)} for m, vals in values.items()}
    averages = {m: {"psnr_y": sum(v[0] for v in vals) / 3, "ssim_y": sum(v[1] for v in vals) / 3} for m, vals in values.items()}
    return {
        "title": "Table 1", "caption": "PSNR / SSIM, 100% of the tasks", "profile_label": LABEL,
        "metrics": ["psnr_y", "ssim_y"], "columns": columns, "show_params": True,
        "methods": [{"name": m, "params_display": "0.12M"} for m in method_names],
        "cells": cells, "averages": averages, "footnotes": ["PSNR: protocol 'psnr_y'."],
    }


def test_ranks_on_printed_values():
    table = report.build_table(_result())
    a, b, c = table.rows
    assert [(c[0].rank, c[1].rank) for c in (a.cells[0], b.cells[0], c.cells[0])] == [(2, 2), (1, 0), (0, 1)]
    # 33.00 and 33.004 print the same, so both are best, and 32.00 is second
    assert (a.cells[1][0].rank, b.cells[1][0].rank, c.cells[1][0].rank) == (1, 1, 2)
    assert a.cells[1][0].text == "33.00" and c.cells[1][1].text == "0.920"
    assert table.groups == [("Dehazing", 1), ("Denoising on BSD68", 2), ("Average", 1)]


def test_latex_format_marks_and_escaping():
    tex = report.render_latex(report.build_table(_result()))
    assert r"\textbf{31.00} / 0.940" in tex
    assert r"\underline{30.00} / \underline{0.950}" in tex
    assert r"A \& B" in tex and r"C\_1" in tex and r"\textless{}" not in tex
    assert r"\multicolumn{2}{c}{Denoising on BSD68}" in tex and r"\cmidrule(lr){3-4}" in tex
    assert r"$\sigma$ = 15" in tex
    assert r"100\% of the tasks" in tex
    assert "not comparable with the paper" in tex and r"\toprule" in tex and r"\bottomrule" in tex


def test_html_escapes_names_and_carries_label():
    html = report.render_html(report.build_table(_result()))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "A &amp; B" in html
    assert "<b>31.00</b> / 0.940" in html and "<u>30.00</u> / <u>0.950</u>" in html
    assert html.count("not comparable with the paper") >= 2  # banner and caption
    assert 'colspan="2"' in html


def test_text_table():
    text = report.render_text(report.build_table(_result()))
    assert "**31.00** / 0.940" in text and "_30.00_ / _0.950_" in text
    assert LABEL in text and "Params" in text and "0.12M" in text


def test_single_row_has_no_marks():
    result = _result()
    name = result["methods"][0]["name"]
    result["methods"] = result["methods"][:1]
    result["cells"] = {name: result["cells"][name]}
    table = report.build_table(result)
    assert all(m.rank == 0 for cell in table.rows[0].cells for m in cell)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed here")
def test_latex_compiles(tmp_path):
    tex = report.render_latex(report.build_table(_result()))
    doc = "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}\\begin{document}" + tex + "\\end{document}"
    (tmp_path / "t.tex").write_text(doc)
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]


def _with_per_image(gap_a: float, noise: float, n: int = 30):
    """Two methods on one column: A = B + gap_a (+ per-image noise)."""
    rng = __import__("numpy").random.default_rng(0)
    base = rng.normal(30, 1, n)
    a = base + gap_a + rng.normal(0, noise, n)
    columns = [{"id": "c", "group": "G", "label": "L"}]
    per_image = [{"method": "A", "column": "c", "image_id": str(i), "psnr_y": float(a[i]), "ssim_y": 0.9} for i in range(n)]
    per_image += [{"method": "B", "column": "c", "image_id": str(i), "psnr_y": float(base[i]), "ssim_y": 0.8} for i in range(n)]
    cells = {"A": {"c": {"psnr_y": float(a.mean()), "ssim_y": 0.9}}, "B": {"c": {"psnr_y": float(base.mean()), "ssim_y": 0.8}}}
    return {
        "title": "T", "caption": "C", "profile_label": LABEL, "metrics": ["psnr_y", "ssim_y"], "columns": columns,
        "show_params": False, "methods": [{"name": "A"}, {"name": "B"}], "cells": cells,
        "averages": {m: {"psnr_y": cells[m]["c"]["psnr_y"], "ssim_y": cells[m]["c"]["ssim_y"]} for m in cells},
        "per_image": per_image,
    }


def test_best_not_significantly_better_is_marked():
    table = report.build_table(_with_per_image(gap_a=0.05, noise=1.0))
    assert table.rows[0].cells[0][0].rank == 1 and table.rows[0].cells[0][0].not_significant
    assert report.NOT_SIGNIFICANT_NOTE in table.footnotes
    assert "$^\\dagger$" in report.render_latex(table) and "<sup>†</sup>" in report.render_html(table)


def test_clear_winner_is_not_marked():
    table = report.build_table(_with_per_image(gap_a=1.0, noise=0.05))
    assert table.rows[0].cells[0][0].rank == 1 and not table.rows[0].cells[0][0].not_significant
    assert report.NOT_SIGNIFICANT_NOTE not in table.footnotes
