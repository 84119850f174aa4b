"""Every notebook in workbooks/ runs headless with nbclient against its installed kernel and
finishes without errors; the Sandwich notebook shows a table, a chart and a progress bar."""

import functools
import json
import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

WORKBOOKS = pathlib.Path(__file__).resolve().parents[2] / "workbooks"
NOTEBOOKS = sorted(WORKBOOKS.glob("*.ipynb"))


@functools.lru_cache(maxsize=None)  # each notebook runs once; the tests below read its outputs
def execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=nb.metadata["kernelspec"]["name"],
                   resources={"metadata": {"path": str(WORKBOOKS)}}).execute()
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path):
    nb = execute(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def test_the_sandwich_notebook_shows_a_table_a_chart_and_a_progress_bar():
    nb = execute(WORKBOOKS / "first_notebook.ipynb")
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("text/html" in d and "<table" in d["text/html"] for d in data)
    assert any("application/vnd.vegalite.v5+json" in d for d in data)
    assert any("<progress" in d.get("text/html", "") for d in data)


def precondition(nb):
    """(weak, ceiling) mean test accuracies from the notebook's check line."""
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")
    match = re.search(r"weak ([0-9.]+) ceiling ([0-9.]+)", text)
    assert match, text
    return float(match[1]), float(match[2])


def test_the_experiment_notebook_reports_with_the_same_renderer_as_the_html_file():
    nb = execute(WORKBOOKS / "experiment.ipynb")
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = [d["text/html"] for d in data if "text/html" in d]
    # exp:report() shows the core's report (the HTML file's renderer): titled tables with
    # rounded numbers, the PGR chart and the training curves as SVG, styles scoped to it.
    reports = [h for h in html if 'class="sandwich-report"' in h]
    assert reports, html
    r = reports[0]
    assert "Performance gap recovered" in r and "Training loss" in r and r.count("<svg") >= 2
    assert "crowd_dawid_skene" in r and "<body" not in r
    cells = re.findall(r"<td>([^<]*)</td>", r)
    assert cells and not [c for c in cells if re.fullmatch(r"-?\d+\.\d{4,}", c)], cells
    assert any(".html" in d.get("text/plain", "") for d in data)
    # A meaningful result, not models at chance: weak clearly above chance, ceiling above weak.
    weak, ceiling = precondition(nb)
    assert weak >= 0.6 and ceiling - weak >= 0.05, (weak, ceiling)


def test_the_python_notebook_shows_experiment_results_as_polars_frames():
    nb = execute(WORKBOOKS / "python_experiment.ipynb")
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = [d["text/html"] for d in data if "text/html" in d]
    assert any("crowd_dawid_skene" in h and "pgr" in h for h in html), html
    assert any("arm" in h and "value" in h for h in html)
    # exp.report() shows the core's HTML report: titled tables, PGR bars, training curves.
    reports = [h for h in html if "Performance gap recovered" in h]
    assert reports and "<svg" in reports[0] and "Training loss" in reports[0]
    weak, ceiling = precondition(nb)
    assert weak >= 0.6 and ceiling - weak >= 0.05, (weak, ceiling)


def test_the_feedback_notebook_collects_judgments_over_http_and_trains_on_them():
    nb = execute(WORKBOOKS / "feedback.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    scores = json.loads(re.search(r"^(\{.*\})$", text, re.M).group(1))
    # Four raters right 90% of the time and two at random, three judgments per item: the
    # Dawid-Skene labels are clearly better than any one rater, and no worse than the vote.
    assert scores["dawid_skene"] >= 0.92 and scores["dawid_skene"] >= scores["majority_vote"] - 0.01, scores
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "text/html" in o.get("data", {})]
    quality = next(h for h in html if "gold_accuracy" in h)
    assert "random-1" in quality and "careful-1" in quality
    test_accuracy = float(re.search(r"trained on the raters' labels: ([0-9.]+)", text).group(1))
    assert test_accuracy >= 0.6, text


def test_the_overopt_notebook_shows_both_curves_the_fits_and_the_pgr_table():
    nb = execute(WORKBOOKS / "overopt.ipynb")
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    charts = [d["application/vnd.vegalite.v5+json"] for d in data if "application/vnd.vegalite.v5+json" in d]
    titles = [json.dumps(c.get("title", "")) for c in charts]
    assert any("best-of-n" in t for t in titles) and any("GRPO" in t for t in titles), titles
    html = " ".join(d.get("text/html", "") for d in data)
    assert "peak_d" in html and "crowd_bt" in html and "pgr" in html, html[:2000]


def test_the_python_overopt_notebook_shows_the_curve_the_fit_and_the_pgr_table():
    nb = execute(WORKBOOKS / "python_overopt.ipynb")
    data = [o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    charts = [d["application/vnd.vegalite.v5+json"] for d in data if "application/vnd.vegalite.v5+json" in d]
    assert any("best-of-n (Python)" in json.dumps(c.get("title", "")) for c in charts), charts
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # The fit's curvature is above 0 (gold bends down) and the proxy rose over the sweep.
    beta_lower = float(re.search(r"beta -?[0-9.]+ \[(-?[0-9.]+),", text).group(1))
    proxy = re.search(r"proxy (-?[0-9.]+) -> (-?[0-9.]+)", text)
    assert beta_lower > 0 and float(proxy.group(2)) > float(proxy.group(1)), text
    html = " ".join(d.get("text/html", "") for d in data)
    assert "crowd_bt" in html and "pgr" in html and "bon_gold" in html, html[:2000]
