"""ship/MODEL_CARD.md: what an app or firmware engineer needs to use the shipped files.

Data, teacher, student, metrics, the recommendation per device (ground.recommend's
rule), the input contract, and a short snippet per shipped format. Everything is read
from card.json, exports.json, profile.json and the ship manifest; nothing is made up.
"""

from __future__ import annotations

from pathlib import Path

from ground import recommend, rundir


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _kib(n) -> str:
    return recommend.size(n)


def _ms(x) -> str:
    return "-" if x is None else f"{x:.3g} ms"


def _normalize_lines(card: dict) -> tuple[list[str], str]:
    norm = (card.get("input") or {}).get("normalization") or {}
    if isinstance(norm, dict) and "mean" in norm and "std" in norm and not norm.get("in_graph"):
        return (
            [
                f"x = (x_raw - {norm['mean']!r}) / {norm['std']!r}  # the student's normalization (card.json)"
            ],
            f"x_model = (x_raw - {norm['mean']}) / {norm['std']} (apply it before calling the model)",
        )
    return ["x = x_raw  # the model takes raw features (normalization, if any, is in its graph)"], (
        "raw features as in the data file (no normalization outside the model)"
    )


def _shape(a: dict, card: dict) -> list[int]:
    shp = (a.get("input") or {}).get("shape")
    return list(shp) if shp else [1, *((card.get("input") or {}).get("shape") or [])]


def snippet(a: dict, card: dict) -> list[str]:
    """About ten lines of Python that load and run one shipped file."""
    norm, _ = _normalize_lines(card)
    shape = tuple(int(d) if isinstance(d, int) and d > 0 else 1 for d in _shape(a, card))
    layout = (a.get("input") or {}).get("layout") or (card.get("input") or {}).get("layout", "")
    head = [
        "import numpy as np",
        f"LABELS = {list(card.get('labels') or [])!r}",
        f"x_raw = np.zeros({shape}, np.float32)  # your input, layout {layout}",
        *norm,
    ]
    f = a["file"]
    if a["format"] == "onnx":
        body = [
            "import onnxruntime as ort",
            f"sess = ort.InferenceSession({f!r}, providers=['CPUExecutionProvider'])",
            "logits = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]",
        ]
    elif a["format"] == "tflite":
        body = [
            "from ai_edge_litert.interpreter import Interpreter",
            f"it = Interpreter(model_path={f!r}); it.allocate_tensors()",
            "i, o = it.get_input_details()[0], it.get_output_details()[0]",
            "if i['dtype'] == np.int8:  # full-int8 file: quantize with the file's own scale and zero point",
            "    s, z = i['quantization']; x = np.clip(np.round(x / s + z), -128, 127)",
            "it.set_tensor(i['index'], x.astype(i['dtype'])); it.invoke()",
            "logits = it.get_tensor(o['index']).astype(np.float32)",
            "if o['dtype'] == np.int8: s, z = o['quantization']; logits = (logits - z) * s",
        ]
    elif a["format"] in ("mlpackage", "coreml"):
        body = [
            "import coremltools as ct  # prediction runs on macOS / iOS only",
            f"m = ct.models.MLModel({f!r})",
            "name = m.get_spec().description.input[0].name",
            "logits = np.asarray(list(m.predict({name: x.astype(np.float32)}).values())[0])",
        ]
    else:
        return [f"# no snippet for format {a['format']!r}"]
    return [*head, *body, "print(LABELS[int(np.argmax(logits, axis=-1).ravel()[0])])"]


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


def _devices(picks: dict[str, recommend.Pick]) -> list[str]:
    """Which file on which device, against each device's budget."""
    out = [
        "## Which file on which device",
        "",
        f"Rule: {recommend.RULE}. Latency is measured on the host and estimated elsewhere "
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
        file = p.recommended or (
            f"nothing fits (nearest: {p.file}: {'; '.join(p.reasons)})" if p.file else "not judged"
        )
        out.append(
            f"| {dev} | {file} | {_ms(p.latency_ms)} ({p.method or '-'}) | {_kib(p.ram_bytes)} | "
            f"{_kib(p.flash_bytes)} | {budget} |"
        )
    return out


def _input_contract(card: dict, arts: dict[str, dict], shipped: list[str]) -> list[str]:
    """The model's input and output, and each shipped file's dtype and quantization."""
    inp, output = card.get("input") or {}, card.get("output") or {}
    _, norm_text = _normalize_lines(card)
    out = [
        "",
        "## Input contract",
        "",
        f"- input `{inp.get('name', 'input')}`: float32 `[batch, {', '.join(map(str, inp.get('shape', [])))}]`, "
        f"layout {inp.get('layout', '?')}; {norm_text}",
        f"- output `{output.get('name', 'logits')}`: "
        f"{output.get('kind', 'logits')} `[batch, {output.get('num_classes', '?')}]`; "
        "the class is the arg-max; probabilities = softmax(logits)",
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


def _how_to_run(card: dict, arts: dict[str, dict], shipped: list[str]) -> list[str]:
    """One snippet per shipped (format, input dtype), or why nothing was shipped."""
    out = ["", "## How to run each format", ""]
    seen = set()
    for f in shipped:
        a = arts.get(f)
        if a is None or (a["format"], (a.get("input") or {}).get("dtype")) in seen:
            continue
        seen.add((a["format"], (a.get("input") or {}).get("dtype")))
        out += [f"### {a['format']} ({f})", "", "```python", *snippet(a, card), "```", ""]
    if not shipped:
        out += ["No file fits any profiled device, so nothing was shipped.", ""]
    return out


def render(card: dict, exports: dict, profile: dict, manifest: dict) -> str:
    picks = recommend.recommend(profile, exports)
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    shipped = _shipped(manifest, picks)
    out = [
        *_data(card, profile),
        *_models(card),
        *_metrics(card, arts, shipped),
        *_devices(picks),
        *_input_contract(card, arts, shipped),
        *_how_to_run(card, arts, shipped),
    ]
    return "\n".join(out)


def write(ship_dir: Path, card: dict, exports: dict, profile: dict, manifest: dict) -> Path:
    return rundir.atomic_write_bytes(
        Path(ship_dir) / "MODEL_CARD.md", render(card, exports, profile, manifest).encode()
    )
