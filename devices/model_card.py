"""ship/MODEL_CARD.md: what an app or firmware engineer needs to use the shipped files.

Data, teacher, student, metrics, the recommendation per device (ground.recommend's
rule), the input contract with the preprocessing (preprocess.json), and the text of the
shipped examples (examples/*.py), read from the files that were run on the raw holdout, so
the card shows no step the examples do not run. Everything is read from card.json,
exports.json, profile.json, the ship manifest and ship/examples/; nothing is made up.
"""

from __future__ import annotations

from pathlib import Path

from ground import recommend, rundir

from . import file_card


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _kib(n) -> str:
    return recommend.size(n)


def _ms(x) -> str:
    return "-" if x is None else f"{x:.3g} ms"


def _shipped(manifest: dict, picks: dict[str, recommend.Pick]) -> list[str]:
    """The manifest's files, those recommended on some device first."""
    recommended = {p.recommended for p in picks.values() if p.recommended}
    return sorted(
        (f["file"] for f in manifest.get("files", [])), key=lambda f: (f not in recommended, f)
    )


def _data(card: dict, profile: dict) -> list[str]:
    """The title, where the card comes from, and the data it was trained and held out on."""
    h = (card.get("metrics") or {}).get("holdout") or {}
    lin = card.get("lineage") or {}
    data = (lin.get("recipe") or {}).get("data") or {}
    return [
        f"# Model card: {card.get('run')}",
        "",
        f"Written by tinyship from `student/card.json`, `export/exports.json` and `profile/profile.json` "
        f"(profiled {profile.get('created', '?')}; recipe `{lin.get('recipe_path', '?')}`).",
        "",
        "## Data",
        "",
        f"- dataset: {data.get('name', data.get('path', '?'))}; task: {card.get('task', '?')}; "
        f"{(card.get('output') or {}).get('num_classes', len(card.get('labels') or []))} classes: "
        f"{', '.join(map(str, card.get('labels') or []))}",
        f"- holdout: {h.get('n', '?')} rows never used for training or selection "
        f"(holdout_fraction {data.get('holdout_fraction', '?')}, val_fraction {data.get('val_fraction', '?')})",
        "",
    ]


def _models(card: dict) -> list[str]:
    """The teacher's members and size, the student's architecture and how it was trained."""
    lin = card.get("lineage") or {}
    train = (lin.get("recipe") or {}).get("train") or {}
    teacher, student = card.get("teacher") or {}, card.get("student") or {}
    return [
        "## Teacher",
        "",
        f"- {len(teacher.get('members', []))} members, combined by `{teacher.get('combine', '?')}`: "
        + ", ".join(
            f"{m.get('name')} (weight {m.get('weight', 0):.3g})" for m in teacher.get("members", [])
        ),
        f"- size: {teacher.get('bytes', '?'):,} B ({teacher.get('bytes_method', '')})"
        if isinstance(teacher.get("bytes"), int)
        else "- size: not recorded",
        "",
        "## Student",
        "",
        f"- {student.get('arch')} {student.get('spec', {})}: {student.get('params') or 0:,} parameters, "
        f"{student.get('macs') or 0:,} MACs per inference",
        f"- trained on the teacher's soft targets: loss {train.get('loss', '?')}, temperature "
        f"{train.get('temperature', '?')}, alpha {train.get('alpha', '?')}, {train.get('epochs', '?')} epochs, "
        f"seed {lin.get('seed', train.get('seed', '?'))}",
        "",
    ]


def _metrics(card: dict, arts: dict[str, dict], shipped: list[str]) -> list[str]:
    """Holdout accuracy of teacher, student, baseline and each shipped file."""
    h = (card.get("metrics") or {}).get("holdout") or {}
    return [
        "## Metrics (holdout)",
        "",
        "| model | accuracy |",
        "|---|---|",
        f"| teacher | {_pct((h.get('teacher') or {}).get('accuracy'))} |",
        f"| student | {_pct((h.get('student') or {}).get('accuracy'))} "
        f"(agreement with teacher {_pct((h.get('student') or {}).get('agreement_with_teacher'))}) |",
        f"| baseline: same student, hard labels only | {_pct((h.get('baseline') or {}).get('accuracy'))} |",
        *[
            f"| {f} | {_pct(arts.get(f, {}).get('accuracy'))} "
            f"(top-1 agreement with the student {_pct((arts.get(f, {}).get('parity') or {}).get('agreement'))}) |"
            for f in shipped
        ],
        "",
    ]


def _tolerance(picks: dict[str, recommend.Pick]) -> float:
    return next(iter(picks.values())).tolerance if picks else recommend.DEFAULT_TOLERANCE


def _devices(picks: dict[str, recommend.Pick], refused: frozenset | set = frozenset()) -> list[str]:
    """Which file on which device, against each device's budget."""
    out = [
        "## Which file on which device",
        "",
        f"Rule: {recommend.rule(_tolerance(picks))}. "
        "Latency is measured on the host and estimated elsewhere "
        "(see `profile/report.html` for the estimator's error).",
        "",
        "| device | file | latency | RAM | flash | budget (latency / RAM / flash) |",
        "|---|---|---|---|---|---|",
    ]
    for dev, p in picks.items():
        b = p.budget
        budget = " / ".join(
            [
                f"{b['latency_ms']:g} ms" if "latency_ms" in b else "-",
                recommend.size(b["ram_kb"] * 1024) if "ram_kb" in b else "-",
                recommend.size(b["flash_kb"] * 1024) if "flash_kb" in b else "-",
            ]
        )
        file = (
            f"{p.recommended} (refused, not shipped: its example disagreed)"
            if p.recommended in refused
            else p.recommended
        ) or (
            f"nothing fits (nearest: {p.file}: {'; '.join(p.reasons)})" if p.file else "not judged"
        )
        out.append(
            f"| {dev} | {file} | {_ms(p.latency_ms)} ({p.method or '-'}) | {_kib(p.ram_bytes)} | "
            f"{_kib(p.flash_bytes)} | {budget} |"
        )
    return out


RAW_INPUT = (
    "raw values as in the data file: the normalization (and the one-hot of categorical columns) "
    "is the graph's first op, so do not normalize before feeding"
)


def _input_contract(card: dict, arts: dict[str, dict], shipped: list[str]) -> list[str]:
    """The model's input and output, and each shipped file's dtype and quantization."""
    inp, output = card.get("input") or {}, card.get("output") or {}
    out = [
        "",
        "## Input contract",
        "",
        f"- input `{inp.get('name', 'input')}`: float32 `[batch, {', '.join(map(str, inp.get('shape', [])))}]`, "
        f"layout {inp.get('layout', '?')}; {RAW_INPUT}",
        *_preprocess_lines(inp.get("preprocess") or {}),
        f"- output `{output.get('name', 'logits')}`: "
        f"{output.get('kind', 'logits')} `[batch, {output.get('num_classes', '?')}]`; "
        "the class is the arg-max; probabilities = softmax(logits)",
        *_decision_lines(inp.get("decision")),
        "- per file (from exports.json):",
        "",
        "| file | input shape | dtype | quantization (q = round(x / scale) + zero_point) | output |",
        "|---|---|---|---|---|",
    ]
    for f in shipped:
        a = arts.get(f, {})
        i, o = a.get("input") or {}, a.get("output") or {}
        q = i.get("quantization")
        qtext = (
            f"scale {q.get('scale')}, zero_point {q.get('zero_point')}"
            if q
            else "none (float input)"
        )
        out.append(
            f"| {f} | {i.get('shape', '-')} | {i.get('dtype', '-')} | {qtext} | "
            f"{o.get('dtype', '-')} {o.get('kind', '')} |"
        )
    return out


def _decision_lines(decision: dict | None) -> list[str]:
    """A keyword spotter's decision rule on a stream (card input.decision, distill/audio_decision.py)."""
    if not decision:
        return []
    never = ", ".join(f"`{c}`" for c in decision.get("never_fire") or []) or "none"
    out = [
        f"- decision rule on a stream: {decision.get('rule', '?')}; classes that never fire: {never}"
    ]
    chosen = decision.get("chosen")
    if chosen:
        v = (chosen.get("validation") or {}).get("10") or {}
        out.append(
            f"  - picked for this model on {chosen.get('on')}, by {chosen.get('by')}: "
            + (
                f"{chosen['pick']} (the recipe's was {chosen.get('recipe_rule')}); at 10 dB it "
                f"detected {v.get('detected', 0):.1%} with {v.get('false_alarms_per_hour', 0):g} "
                "false alarms per hour there"
                if chosen.get("pick")
                else f"none met the bounds, so the recipe's {chosen.get('recipe_rule')} is kept"
            )
        )
    return out


def _preprocess_lines(pre: dict) -> list[str]:
    """What `preprocess.json` (and examples/preprocess.py, which applies it) does to a raw row."""
    if not pre:
        return []
    out = ["- preprocessing (`preprocess.json`, applied by `examples/preprocess.py`):"]
    cols = pre.get("columns") or []
    if pre.get("kind") == "table":
        csv = pre.get("csv") or {}
        out.append(
            f"  - a CSV with a header row, encoding {csv.get('encoding')}, delimiter "
            f"{csv.get('delimiter')!r}, decimal mark {csv.get('decimal')!r}; columns in this "
            f"order: {', '.join(c['name'] for c in cols)}"
        )
    for c in cols:
        if c.get("kind") == "categorical" and c.get("categories"):
            out.append(
                f"  - `{c['name']}` (categorical): the code is the category's position in "
                f"preprocess.json ({len(c['categories'])} categories); missing -> code "
                f"{_num(c.get('fill'))}"
            )
    numeric = [f"`{c['name']}` {_num(c['fill'])}" for c in cols if c.get("kind") == "numeric"]
    if pre.get("missing") != "error" and any(c.get("fill") is not None for c in cols):
        out.append(
            f"  - a missing value ({', '.join(repr(v) for v in pre.get('missing_values') or [])}, "
            f"any case) is filled (data.impute: {pre.get('missing')})"
            + (f": {', '.join(numeric)}" if numeric else "")
        )
    else:
        out.append("  - a missing value (NaN) is refused: the model was trained without any")
    if pre.get("kind") == "table":
        out.append(
            f"  - a category the training data lacks: data.unseen: {pre.get('unseen')}"
            + (
                f" (code {_num(pre.get('unknown_code'))}: all zeros in the one-hot)"
                if pre.get("unseen") == "unknown"
                else ""
            )
        )
    h = pre.get("holdout") or {}
    if h:
        filled, unseen = (
            sum((h.get("filled") or {}).values()),
            sum((h.get("unseen") or {}).values()),
        )
        out.append(
            f"  - in the holdout ({h.get('rows')} rows): {filled} missing values filled, "
            f"{unseen} unseen categories"
            + (
                f" (per column: filled {h.get('filled')}, unseen {h.get('unseen')})"
                if filled or unseen
                else ""
            )
        )
    return out


def _num(v) -> str:
    return "-" if v is None else f"{v:g}"


def _how_to_run(
    card: dict, arts: dict[str, dict], shipped: list[str], manifest: dict, ship_dir: Path | None
) -> list[str]:
    """Each shipped file's example, run on the raw holdout before it shipped; the text of one
    example per (format, input dtype), read from examples/ (the program that was run)."""
    entries = {f["file"]: f for f in manifest.get("files", [])}
    out = ["", "## How to run each format", ""]
    if not shipped:
        return out + [  # true whether nothing fits or what fits was refused (manifest.json)
            "Nothing was shipped: no file both fits a profiled device and passed its checks "
            "(manifest.json `refused` names any file refused after it fit).",
            "",
        ]
    out += [
        "Each example takes your raw data (a CSV, an .npy of raw features, or a folder of PNG "
        "images) and prints one label per line. Before shipping, tinyship ran each on the raw "
        "holdout and compared its accuracy with the file's:",
        "",
        "| file | command | holdout accuracy of the example |",
        "|---|---|---|",
    ]
    for f in shipped:
        e = entries.get(f, {})
        chk = e.get("example_check") or {}
        out.append(
            f"| {f} | `python {e['example']} DATA` | {_pct(chk.get('accuracy'))} |"
            if e.get("example")
            else f"| {f} | no example ({arts.get(f, {}).get('format')}: not run on the holdout) | - |"
        )
    for c in manifest.get("refused") or []:
        out.append(f"| {c['file']} | refused, not shipped: {c['reason']} | - |")
    seen = set()
    for f in shipped:
        a, e = arts.get(f) or {}, entries.get(f, {})
        key = (a.get("format"), (a.get("input") or {}).get("dtype"))
        if not e.get("example") or ship_dir is None or key in seen:
            continue
        seen.add(key)
        text = (Path(ship_dir) / e["example"]).read_text(encoding="utf-8")
        out += ["", f"### `{e['example']}`", "", "```python", text.rstrip("\n"), "```"]
    return out + [""]


def render(
    card: dict, exports: dict, profile: dict, manifest: dict, ship_dir: Path | None = None
) -> str:
    if card.get("origin") == file_card.ORIGIN:  # files no run made: described by themselves
        return file_card.render(card, exports, profile, manifest)
    picks = recommend.recommend(profile, exports, recommend.tolerance(card))
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    shipped = _shipped(manifest, picks)
    out = [
        *_data(card, profile),
        *_models(card),
        *_metrics(card, arts, shipped),
        *_devices(picks, {c["file"] for c in manifest.get("refused") or []}),
        *_input_contract(card, arts, shipped),
        *_how_to_run(card, arts, shipped, manifest, ship_dir),
    ]
    return "\n".join(out)


def write(ship_dir: Path, card: dict, exports: dict, profile: dict, manifest: dict) -> Path:
    return rundir.atomic_write_bytes(
        Path(ship_dir) / "MODEL_CARD.md",
        render(card, exports, profile, manifest, ship_dir).encode(),
    )
