"""The report's integrator sections (issue 38): confusion matrix and per-class accuracy of each
recommended file, fp32 vs int8 class by class with the rows that changed, latency p50/p90/p99,
a graph view of the shipped file, per-device plot panels, and the page at 1400 and 420 px."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from chromium import Browser, find, render

from devices import report_extras
from devices.analysis import analyse
from devices.report_graph import graph
from devices.report_predict import predict, quant_pairs

CHROMIUM = find()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def _records(run):
    card = json.loads((run / "student" / "card.json").read_text())
    exports = json.loads((run / "export" / "exports.json").read_text())
    doc = json.loads((run / "profile" / "profile.json").read_text())
    return card, exports, doc


def test_report_time_predictions_reproduce_the_recorded_accuracies(profiled_run):
    """The per-row predictions behind the confusion matrices are the files' own: each file's
    accuracy from them equals the one export recorded, row for row."""
    card, exports, _ = _records(profiled_run)
    files = [f for fp32, ints in quant_pairs(exports) for f in (fp32, *ints)]
    assert files, "the fixture run has fp32 and int8 files"
    pred = predict(profiled_run, exports, files, card["labels"])
    recorded = {a["file"]: a["accuracy"] for a in exports["artifacts"]}
    for f in files:
        assert float((pred.pred[f] == pred.y).mean()) == pytest.approx(recorded[f], abs=1e-6), f


def test_confusion_quantization_and_latency_sections(profiled_run):
    card, exports, doc = _records(profiled_run)
    ex = report_extras.compute(doc, card, exports, profiled_run)
    rec = {p.recommended for p in ex.picks.values() if p.recommended}
    assert {t.title.split(" (")[0] for t in ex.confusion} == rec
    n = json.loads((profiled_run / "student" / "card.json").read_text())["metrics"]["holdout"]["n"]
    for t in ex.confusion:  # every holdout row in exactly one cell; per class: diagonal / rows
        cells = np.array([[0 if c == "." else int(c) for c in r[1:-2]] for r in t.rows])
        assert cells.sum() == n and [int(r[-2]) for r in t.rows] == list(cells.sum(axis=1))
    assert ex.quantization and all("rows changed" in t.caption for t in ex.quantization)
    assert ex.latency and all(
        float(r[5].split()[0]) <= float(r[6].split()[0]) <= float(r[7].split()[0])
        for r in ex.latency
    )  # p50 <= p90 <= p99 of the same timed runs
    md = (profiled_run / "profile" / "report.md").read_text()
    for title in ("Confusion matrix of each recommended file", "fp32 vs int8, class by class",
                  "Latency spread where measured", "Graph of each recommended file"):  # fmt: skip
        assert f"## {title}" in md


def test_graph_view_lists_the_files_operators_with_dtypes_and_quantization(profiled_run):
    path = profiled_run / "export" / "model.int8-full.tflite"
    g = graph(path)
    assert [n.op for n in g.nodes] == [o.op for o in analyse(path).ops]
    assert g.inputs[0].type.startswith("int8[") and "scale" in g.inputs[0].quant
    conv = next(n for n in g.nodes if n.op in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    assert any(t.const and t.quant.startswith("per-channel") for t in conv.inputs)
    assert ("padding", "SAME") in conv.attributes or ("padding", "VALID") in conv.attributes
    onnx_g = graph(profiled_run / "export" / "model.int8.onnx")
    assert (
        any(n.op == "QuantizeLinear" for n in onnx_g.nodes) and "opset" in onnx_g.properties[0][1]
    )


PROBE = """(() => {
  const vis = el => { const r = el.getBoundingClientRect();
    return r.width > 0 && r.top < window.innerHeight && r.left >= -1 && r.right <= window.innerWidth + 1; };
  const t = document.getElementById('answer');
  const first = t.tBodies[0].rows[0];
  const cells = [...first.cells].map(c => [c.dataset.label || '', vis(c)]);
  const img = document.querySelector('#accuracy + .scroll img');
  return {top: t.getBoundingClientRect().top, firstRowVisible: vis(first.cells[0]), cells,
          ids: ['confusion', 'quantization', 'latency', 'graph'].filter(i => document.getElementById(i)),
          nodes: document.querySelectorAll('#graph ~ details.node').length,
          matrix: document.querySelectorAll('b.diag').length,
          plot: img ? [img.naturalWidth, img.getBoundingClientRect().width] : null,
          scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth};
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@needs_chromium
@pytest.mark.parametrize("width", [1400, 420])
def test_first_screen_is_the_verdict_and_every_section_is_there(
    profiled_run, browser, width, tmp_path
):
    """Was: no viewport tag, RAM and flash off-screen at 420 px, no confusion matrix, no per-class
    fp32 vs int8, no graph view. The first screen shows the verdict table with every column of its
    first row (cards on a phone), and the sections are on the page."""
    html = profiled_run / "profile" / "report.html"
    png, probe, errors = render(browser, html.as_uri(), width, 900, PROBE)
    shots = os.environ.get("TINYSHIP_SCREENSHOTS")
    if shots:
        os.makedirs(shots, exist_ok=True)
        with open(os.path.join(shots, f"integrator-{width}.png"), "wb") as f:
            f.write(png)
    assert errors == []
    assert probe["top"] < 450 and probe["firstRowVisible"], probe
    assert all(seen for _, seen in probe["cells"]), probe  # RAM and flash included, at 420 px too
    assert probe["ids"] == ["confusion", "quantization", "latency", "graph"]
    assert probe["nodes"] > 0 and probe["matrix"] > 0
    assert probe["scrollWidth"] <= probe["innerWidth"] + 1
    assert probe["plot"] and probe["plot"][0] > 0 and probe["plot"][1] >= min(width - 40, 900)
