"""Table rendering: the paper's cell format, best/second marks, escaping and the profile label."""
import re
import shutil
import subprocess

import pytest
from report_helpers import fake_results, small_results

from harness.metrics import get_protocol
from harness.suite import available_suites, load_suite
from reports import formats as report
from reports import tables
from reports.tables import build_delta_table, build_table, build_tables

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
    return small_results(columns, values, caption="PSNR / SSIM, 100% of the tasks", title="Table 1")


def test_ranks_on_printed_values():
    table = build_table(_result())
    a, b, c = table.rows
    assert [(c[0].rank, c[1].rank) for c in (a.cells[0], b.cells[0], c.cells[0])] == [(2, 2), (1, 0), (0, 1)]
    # 33.00 and 33.004 print the same, so both are best, and 32.00 is second
    assert (a.cells[1][0].rank, b.cells[1][0].rank, c.cells[1][0].rank) == (1, 1, 2)
    assert a.cells[1][0].text == "33.00" and c.cells[1][1].text == "0.920"
    assert table.groups == [("Dehazing", 1), ("Denoising on BSD68", 2), ("Average", 1)]


def test_latex_format_marks_and_escaping():
    tex = report.render_latex(build_table(_result()))
    assert r"\textbf{31.00} / 0.940" in tex
    assert r"\underline{30.00} / \underline{0.950}" in tex
    assert r"A \& B" in tex and r"C\_1" in tex
    # < and > print as ¡ and ¿ in LaTeX's default OT1 encoding, so they are spelled out
    assert r"\textless{}b\textgreater{}x\textless{}/b\textgreater{}" in tex
    assert r"\multicolumn{2}{c}{Denoising on BSD68}" in tex and r"\cmidrule(lr){3-4}" in tex
    assert r"$\sigma$ = 15" in tex
    assert r"100\% of the tasks" in tex
    assert "not comparable with the paper" in tex and r"\toprule" in tex and r"\bottomrule" in tex


def test_html_escapes_names_and_carries_label():
    html = report.render_html(build_table(_result()))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "A &amp; B" in html
    assert "<b>31.00</b> / 0.940" in html and "<u>30.00</u> / <u>0.950</u>" in html
    assert html.count("not comparable with the paper") >= 2  # banner and caption
    assert 'colspan="2"' in html


def test_text_table():
    text = report.render_text(build_table(_result()))
    assert "**31.00** / 0.940" in text and "_30.00_ / _0.950_" in text
    assert LABEL in text and "Params" in text and "0.12M" in text


def test_single_row_has_no_marks():
    result = _result()
    name = result.methods[0].name
    result.methods = result.methods[:1]
    result.cells = {name: result.cells[name]}
    table = build_table(result)
    assert all(m.rank == 0 for cell in table.rows[0].cells for m in cell)


def _with_per_image(gap_a: float, noise: float, n: int = 30):
    """Two methods on one column: A = B + gap_a (+ per-image noise)."""
    rng = __import__("numpy").random.default_rng(0)
    base = rng.normal(30, 1, n)
    a = base + gap_a + rng.normal(0, noise, n)
    per_image = [{"method": "A", "column": "c", "image_id": str(i), "psnr_y": float(a[i]), "ssim_y": 0.9} for i in range(n)]
    per_image += [{"method": "B", "column": "c", "image_id": str(i), "psnr_y": float(base[i]), "ssim_y": 0.8} for i in range(n)]
    return small_results([{"id": "c", "group": "G", "label": "L"}],
                         {"A": [(float(a.mean()), 0.9)], "B": [(float(base.mean()), 0.8)]},
                         per_image=per_image, show_params=False)


NOT_SIGNIFICANT = tables.not_significant_note(get_protocol("psnr_y"))


def test_best_not_significantly_better_is_marked():
    table = build_table(_with_per_image(gap_a=0.05, noise=1.0))
    assert table.rows[0].cells[0][0].rank == 1 and table.rows[0].cells[0][0].not_significant
    assert NOT_SIGNIFICANT in table.footnotes
    assert "$^\\dagger$" in report.render_latex(table) and "<sup>†</sup>" in report.render_html(table)


def test_clear_winner_is_not_marked():
    table = build_table(_with_per_image(gap_a=1.0, noise=0.05))
    assert table.rows[0].cells[0][0].rank == 1 and not table.rows[0].cells[0][0].not_significant
    assert NOT_SIGNIFICANT not in table.footnotes


# -- paper rows beside reproduced rows, the Δ view, Markdown ----------------------------------------


def _rows(table, kind):
    return [r for r in table.rows if r.kind == kind]


def test_mini_rows_are_never_ranked_against_paper_rows():
    doc = fake_results("table1_three_task", profile="mini", offset=-6.0)
    table = build_table(doc, paper=doc.reported)
    paper, ours = _rows(table, "paper"), _rows(table, "reproduced")
    assert [r.name for r in paper][-1] == "DACode" and len(paper) == 9 and len(ours) == 5
    # each group has its own best: the paper's DACode row and a reproduced row are both bold
    for j in range(len(table.column_labels)):
        assert sum(r.cells[j][0].rank == 1 for r in paper) >= 1
        assert sum(r.cells[j][0].rank == 1 for r in ours) >= 1
    assert paper[-1].cells[0][0].text == "31.50" and paper[-1].cells[0][0].rank == 1  # as the paper marks it
    assert any("never ranked against a paper number" in n for n in table.footnotes)
    headings = [h for h, _ in table.headed_rows() if h]
    assert headings == ["As printed in the paper", "Reproduced here (mini profile)"]


def test_paper_profile_ranks_all_rows_together():
    doc = fake_results("table1_three_task", profile="paper", offset=+0.5, methods=["AirNet", "PromptIR", "DACode"])
    table = build_table(doc, paper=doc.reported)
    paper, ours = _rows(table, "paper"), _rows(table, "reproduced")
    # reproduced DACode = printed + 0.5 dB on average: it is the one best PSNR; the paper's DACode is second
    avg = len(table.column_labels) - 1
    assert [r.name for r in ours if r.cells[avg][0].rank == 1] == ["DACode"]
    assert not any(r.cells[avg][0].rank == 1 for r in paper)
    assert [r.name for r in paper if r.cells[avg][0].rank == 2] == ["DACode"]
    assert any("ranks them together" in n or "rank them together" in n for n in table.footnotes)


def test_delta_view_is_reproduced_minus_printed():
    doc = fake_results("table1_three_task", profile="mini")
    doc.cells["DACode"]["sots"].values.update(psnr_y=31.50 - 1.234, ssim_y=0.982 + 0.0101)
    doc.averages["DACode"] = {"psnr_y": 32.96 + 0.1, "ssim_y": 0.922}
    delta = build_delta_table(doc)
    dacode = next(r for r in delta.rows if r.name == "DACode")
    assert [m.text for m in dacode.cells[0]] == ["-1.23", "+0.010"]
    assert [m.text for m in dacode.cells[-1]] == ["+0.10", "+0.000"]
    assert {r.name for r in delta.rows} == {"AirNet", "PromptIR", "AdaIR", "MoCE-IR", "DACode"}
    assert "not a reproduction gap" in delta.caption  # mini: says what the differences mean
    from harness.results import MethodResult

    doc.methods.append(MethodResult(name="NotInPaper"))
    assert "NotInPaper" not in {r.name for r in build_delta_table(doc).rows}


def test_ablation_layouts_with_paper_rows():
    doc = fake_results("table4_nc_ablation", profile="mini")  # runs 0, 32, 64 (Ours) of the seven
    table = build_table(doc, paper=doc.reported)
    assert [g for g, _ in table.groups] == ["0", "32", "48", "64 (Ours)", "80", "96", "128"]
    assert [(r.kind, r.name) for r in table.rows] == [("paper", "PSNR"), ("paper", "SSIM"),
                                                      ("reproduced", "PSNR"), ("reproduced", "SSIM")]
    assert table.rows[2].cells[2][0].text == "–"  # Nc = 48 was not run
    assert table.rows[0].cells[3][0].rank == 1 and table.rows[0].cells[6][0].rank == 1  # 32.96 twice in print
    doc5 = fake_results("table5_adaptation", profile="mini")
    t5 = build_table(doc5, paper=doc5.reported)
    assert [g for g, _ in t5.groups] == ["PSNR", "SSIM"] and len(t5.rows) == 4
    assert build_delta_table(doc5).groups[0][0].startswith("Average")


def test_split_metrics_with_paper_rows():
    doc = fake_results("table3_cdd11", profile="mini")
    psnr, ssim = build_tables(doc, paper=doc.reported)
    assert psnr.title.endswith("(PSNR)") and ssim.title.endswith("(SSIM)")
    onerestore = next(r for r in psnr.rows if r.name == "OneRestore")
    assert onerestore.kind == "paper" and onerestore.cells[0][0].text == "32.52"
    assert next(r for r in ssim.rows if r.name == "OneRestore").cells[0][0].text == "0.990"


def test_markdown_escapes_names_and_marks_sections():
    result = _result(method_names=("A|B", "<i>x</i>", "C_1*"))
    md = report.render_markdown(build_table(result))
    assert "A\\|B" in md and "&lt;i&gt;x&lt;/i&gt;" in md and "C\\_1\\*" in md and "<i>" not in md
    assert "| **31.00** / 0.940" in md and "<u>30.00</u> / <u>0.950</u>" in md
    doc = fake_results("table1_three_task")
    md = report.render_markdown(build_table(doc, paper=doc.reported))
    assert "| *As printed in the paper* " in md and re.search(r"\| \*PromptIR\* +\| 30\.58 / 0\.974", md)


def test_run_tables_with_paper_keeps_its_shape():
    from reports import render, run_tables

    doc = fake_results("table1_three_task")
    text = render("text", run_tables(doc, with_paper=False))
    assert "As printed in the paper" not in text and "Δ vs paper" not in text
    tables_ = run_tables(doc)
    text, html, latex = (render(f, tables_) for f in ("text", "html", "latex"))
    assert "As printed in the paper" in text and "Δ vs paper" in text
    assert html.count('class="paper"') == 9 and r"\textit{MoCE-IR}" in latex


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
def test_latex_of_all_five_tables_compiles(tmp_path):
    """Every suite, both profiles, with the paper's rows and the Δ view, plus hostile names: one document."""
    parts = [report.render_latex(build_table(_result(method_names=("A & B", "<b>x</b>", "C_1 #$%~^{}"))))]
    for name in available_suites():
        for profile in load_suite(name).profiles:
            doc = fake_results(name, profile=profile)
            paper = doc.reported
            parts += [report.render_latex(t) for t in build_tables(doc, paper=paper)]
            parts.append(report.render_latex(build_delta_table(doc, paper)))
    parts.append(report.render_latex(build_table(_with_per_image(gap_a=0.05, noise=1.0))))
    doc = ("\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}\\begin{document}\n"
           + "\n\\clearpage\n".join(parts) + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Missing character" not in log and "Undefined control sequence" not in log
    assert (tmp_path / "t.pdf").stat().st_size > 10_000
