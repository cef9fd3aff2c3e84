"""`dacode-bench report`: one self-contained page — tables, figures as data: URIs, provenance —
checked as text and in a real headless browser (console errors, images decoded, screenshot)."""
import contextlib
import io
import pathlib
import re
import shutil
import subprocess

import pytest
import torch
from report_helpers import fake_results, write_run

from harness import methods
from harness.cli import main
from harness.suite import load_suite
from reports import page as html_report

HOSTILE = "<script>console.error('xss')</script> & Co"
ARTEFACTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "test-artefacts"


def _cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _doc():
    doc = fake_results("table1_three_task", extra={HOSTILE: 0.5}, run_id="20250101T000000-report-1")
    doc.caption = doc.caption + " <img src=x onerror=alert(1)>"
    return doc


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A stored Table 1 mini run whose DACode row has (untrained) weights under <root>/models."""
    root = tmp_path_factory.mktemp("results")
    doc = _doc()
    run = write_run(root, doc)
    suite = load_suite("table1_three_task")
    entry = next(m for m in suite.methods if m.name == "DACode")
    torch.manual_seed(0)
    model, _ = methods.instantiate(entry, methods.row_kwargs(entry, "mini", suite.profiles["mini"]))
    from safetensors.torch import save_file

    (root / "models").mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(root / "models" / "key-DACode.safetensors"))
    return run


@pytest.fixture(scope="module")
def report_page(run_dir):
    pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")
    path, figures, notes = html_report.write_report(run_dir, max_images=1, log=lambda *a: None)
    assert any("no trained weights for 'AirNet'" in n for n in notes)
    return path, figures


def test_page_is_self_contained_escaped_and_labelled(report_page, run_dir):
    path, figures = report_page
    html = path.read_text()
    assert path == run_dir / "report.html"
    # tables: the paper's rows beside the reproduced ones, the Δ view
    assert html.count('class="paper"') == 9 and "Reproduced here (mini profile)" in html and "Δ vs paper" in html
    # figures embedded, also written as PNG and PDF
    assert [f.name for f in figures][:3] == ["fig3_qualitative", "fig4a_fingerprints", "fig4b_top5"]
    assert html.count('src="data:image/png;base64,') == len(figures) == 7
    assert all(f.png.is_file() and f.pdf.is_file() and f.png.parent == run_dir / "figures" for f in figures)
    # no external asset of any kind, no script
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html) and "<link" not in html
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;console.error(&#39;xss&#39;)&lt;/script&gt; &amp; Co" in html
    # provenance and the label
    for needle in ("table1_three_task", "20250101T000000-report-1", "abc123", "torch_threads", "manifest_sha256",
                   "key-DACode", "data_s"):
        assert needle in html, needle
    assert html.count("not comparable with the paper") >= 10  # banner, every table, every figure
    # rows that cannot be rebuilt are named, not silently dropped
    assert "no trained weights for &#39;AirNet&#39;" in html
    assert "is not a row of suite" in html


def test_cli_report_without_figures(run_dir, tmp_path):
    out = tmp_path / "page.html"
    code, stdout, err = _cli("report", str(run_dir.parent), "--no-figures", "--out", str(out))
    assert code == 0, err
    assert f"report written: {out}" in stdout
    html = out.read_text()
    assert "figures not drawn (--no-figures)" in html and "data:image/png" not in html
    code, _, err = _cli("report", str(tmp_path / "nothing-here"))
    assert code == 2 and err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1


# -- in a real browser ----------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

# Appended to a copy of the page only: reports what the browser made of it into the DOM.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const t = document.querySelector('table.results').getBoundingClientRect();
  document.body.dataset.images = ok + '/' + imgs.length;
  document.body.dataset.tableTop = Math.round(t.top);
  document.body.dataset.tableRows = document.querySelector('table.results').querySelectorAll('tbody tr').length;
});
</script>"""


def _chromium(page: pathlib.Path, profile: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra,
            page.resolve().as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _console(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_browser_detects_a_console_error(tmp_path):
    """The check below can fail: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('broken')</script></body></html>")
    proc = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("broken" in line for line in _console(proc)), proc.stderr[-2000:]


@needs_chromium
def test_report_in_a_headless_browser(report_page, tmp_path):
    path, figures = report_page
    shot = tmp_path / "report.png"
    proc = _chromium(path, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,1800")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console(proc) == [], _console(proc)  # no console error, nothing blocked, the escaped name never ran
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTEFACTS / "report.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 1800)
    # what the browser rendered: every figure decoded, the first table inside the screenshot
    probed = tmp_path / "probed.html"
    probed.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(probed, tmp_path / "profile2", "--dump-dom").stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-images="{len(figures)}/{len(figures)}"' in body, body
    assert 0 < int(re.search(r'data-table-top="(\d+)"', body).group(1)) < 1800
    # two section headings, the paper's 9 rows, the run's 6 rows (the suite's 5 and the hostile one)
    assert int(re.search(r'data-table-rows="(\d+)"', body).group(1)) == 1 + 9 + 1 + 6
