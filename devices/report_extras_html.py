"""report.html's integrator sections (devices/report_extras.py computes them): confusion
matrices, fp32 vs int8 per class, the latency spread, and the graph view grouped like Netron's
sidebar (model properties, inputs, outputs; per node: properties, attributes, inputs, outputs)."""

from __future__ import annotations

from .report_classes import LATENCY_HEAD, ClassTable
from .report_extras import Extras
from .report_graph import Graph, Tensor
from .report_html import Raw, esc, html_table


def _class_tables(tables: list[ClassTable]) -> list[str]:
    parts = []
    for t in tables:
        parts += [f"<h3>{esc(t.title)}</h3>", f"<p class='muted'>{esc(t.caption)}</p>"]
        if not t.head:
            continue
        rows = t.rows
        if t.diagonal:  # the correct predictions in green, the errors in red
            rows = [
                [
                    Raw(f"<b class='diag'>{esc(c)}</b>") if j == i + 1 and c != "."
                    else Raw(f"<b class='off'>{esc(c)}</b>") if 0 < j <= len(t.rows) and c != "."
                    else c
                    for j, c in enumerate(r)
                ]
                for i, r in enumerate(t.rows)
            ]  # fmt: skip
        parts.append(html_table(t.head, rows))
    return parts


def _tensors(ts: list[Tensor]) -> str:
    rows = [
        [t.role, Raw(f"<span title='{esc(t.full_name)}'>{esc(t.name)}</span>"), t.type,
         t.quant or "-", t.const or "-"]
        for t in ts
    ]  # fmt: skip
    return html_table(["", "name", "type", "quantization", "constant"], rows)


def _node(n) -> str:  # noqa: ANN001 - a report_graph.Node
    out = n.outputs[0].type if n.outputs else "-"
    attrs = (
        "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in n.attributes) or "<dd>none</dd>"
    )
    return (
        f"<details class='node'><summary><code>{n.index}</code> <b>{esc(n.op)}</b> "
        f"<span class='muted'>&rarr; {esc(out)}</span></summary>"
        f"<h4>Node properties</h4><dl><dt>type</dt><dd>{esc(n.op)}</dd>"
        f"<dt>index</dt><dd>{n.index}</dd></dl>"
        f"<h4>Attributes</h4><dl>{attrs}</dl>"
        f"<h4>Inputs</h4>{_tensors(n.inputs)}<h4>Outputs</h4>{_tensors(n.outputs)}</details>"
    )


def _graph(g: Graph | tuple[str, str]) -> list[str]:
    if not isinstance(g, Graph):
        return [f"<h3>{esc(g[0])}</h3>", f"<p class='muted'>No graph view: {esc(g[1])}.</p>"]
    overview = []
    for n in g.nodes:
        out = n.outputs[0] if n.outputs else None
        consts = "; ".join(f"{t.role} {t.type}" for t in n.inputs if t.const)
        overview.append(
            [str(n.index), n.op, out.type if out else "-", (out.quant if out else "") or "-",
             consts or "-"]
        )  # fmt: skip
    props = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in g.properties)
    return [
        f"<h3>{esc(g.file)}</h3>",
        f"<h4>Model properties</h4><dl>{props}</dl>",
        f"<h4>Inputs</h4>{_tensors(g.inputs)}<h4>Outputs</h4>{_tensors(g.outputs)}",
        "<h4>Operators</h4>",
        html_table(["#", "op", "output", "output quantization", "constants"], overview),
        "<p class='muted'>Each operator as Netron's sidebar shows it (open one):</p>",
        *(_node(n) for n in g.nodes),
    ]


def sections(ex: Extras) -> list[str]:
    """The integrator sections, in the page's order, each with an id the tests look for."""
    parts = [
        "<h2 id='confusion'>Confusion matrix of each recommended file</h2>",
        *(_class_tables(ex.confusion) or ["<p class='muted'>No recommended file.</p>"]),
        "<h2 id='quantization'>fp32 vs int8, class by class</h2>",
        *(_class_tables(ex.quantization) or ["<p class='muted'>No fp32 and int8 pair.</p>"]),
        "<h2 id='latency'>Latency spread where measured</h2>",
    ]
    if ex.latency:
        parts += [
            "<p class='muted'>Percentiles of the timed runs of each measured file: p50 is the "
            "figure the verdicts use; p99 / p50 shows how far the slow tail goes.</p>",
            html_table(LATENCY_HEAD, ex.latency),
        ]
    else:
        parts.append("<p class='muted'>No measured latency (every figure is estimated).</p>")
    parts.append("<h2 id='graph'>Graph of each recommended file</h2>")
    for g in ex.graphs:
        parts += _graph(g)
    return parts
