"""ship/MODEL_CARD.md for ``profile FILE``: files no tinyship run made, described by themselves.

There is no data, teacher, student or holdout behind such files, so the card says so once instead
of printing empty fields; every figure in it is read from the files (through their runtime,
devices/file_io.py, recorded in exports.json), the profile and the ship manifest.
"""

from __future__ import annotations

from ground import recommend

ORIGIN = "profile FILE"


def _ms(x) -> str:
    return "-" if x is None else f"{x:.3g} ms"


def _affine(q: dict) -> str:
    """``x / scale + zero_point`` written with the zero point's own sign."""
    z = int(q["zero_point"])
    return f"round(x / {q['scale']:.6g}) {'-' if z < 0 else '+'} {abs(z)}"


def _tensor(t: dict | None) -> str:
    """`name`: dtype [shape] with its quantization, as the file's runtime reports it."""
    if not t:
        return "not read"
    q = t.get("quantization")
    quant = f"{t.get('dtype')} quantized: q = {_affine(q)}" if q else "no quantization parameters"
    batch = " (dynamic batch axis)" if t.get("dynamic_batch") else ""
    return f"`{t.get('name')}`: {t.get('dtype')} {t.get('shape')}{batch}, {quant}"


def _files(arts: dict[str, dict], shipped: list[str]) -> list[str]:
    out = [
        "## Files",
        "",
        "| file | format | precision (from its dtypes) | bytes | input | output |",
        "|---|---|---|---|---|---|",
    ]
    for f in shipped:
        a = arts[f]
        out.append(
            f"| {f} | {a['format']} | {a['precision']} | {a['bytes']:,} | "
            f"{_tensor(a.get('input'))} | {_tensor(a.get('output'))} |"
        )
    checks = sorted({arts[f].get("gate") for f in shipped if arts[f].get("gate")})
    return [*out, "", *(f"- checked: {c}" for c in checks), ""]


def _devices(picks: dict[str, recommend.Pick]) -> list[str]:
    out = [
        "## Which file on which device",
        "",
        f"Rule: {recommend.RULE}. Latency is measured on the host and estimated elsewhere "
        "(`profile/report.html` gives the estimator's error).",
        "",
        "| device | file | latency | RAM | flash |",
        "|---|---|---|---|---|",
    ]
    for dev, p in picks.items():
        file = p.recommended or (
            f"nothing fits (nearest: {p.file}: {'; '.join(p.reasons)})" if p.file else "not judged"
        )
        out.append(
            f"| {dev} | {file} | {_ms(p.latency_ms)} ({p.method or 'not run'}) | "
            f"{recommend.size(p.ram_bytes)} | {recommend.size(p.flash_bytes)} |"
        )
    return [*out, ""]


def _how_to_feed(arts: dict[str, dict], shipped: list[str]) -> list[str]:
    """How to feed each file, from its own input tensor (no preprocessing is known)."""
    out = [
        "## How to feed each file",
        "",
        "No tinyship run recorded a preprocessing step for these files: feed each input in the "
        "form its own tensor takes.",
        "",
    ]
    for f in shipped:
        i, o = arts[f].get("input") or {}, arts[f].get("output") or {}
        qi, qo = i.get("quantization"), o.get("quantization")
        feed = (
            f"quantize your float values with the file's own parameters, "
            f"q = clip({_affine(qi)}, min, max) of {i['dtype']}"
            if qi
            else f"pass {i.get('dtype')} values as they are"
        )
        back = (
            f"x = (q {'+' if int(qo['zero_point']) < 0 else '-'} {abs(int(qo['zero_point']))}) * "
            f"{qo['scale']:.6g} turns the {o['dtype']} output into floats"
            if qo
            else f"the output is {o.get('dtype')}"
        )
        out.append(f"- {f}: shape {i.get('shape')}; {feed}; {back}.")
    return [*out, ""]


def render(card: dict, exports: dict, profile: dict, manifest: dict) -> str:
    """The model card of a ``profile FILE`` run: files, devices, and how to feed each file."""
    picks = recommend.recommend(profile, exports)
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    shipped = [f["file"] for f in manifest.get("files", []) if f.get("file") in arts]
    sources = (card.get("lineage") or {}).get("files") or []
    head = [
        f"# Model card: {card.get('run')}",
        "",
        f"Written by `tinyship profile FILE` (profiled {profile.get('created')}) from the files "
        f"themselves: {', '.join(f'`{s}`' for s in sources)}. No tinyship run made them, so there "
        "is no data, teacher, training record or holdout accuracy to report; each file's inputs "
        "and outputs below are read from the file by its runtime.",
        "",
    ]
    if not shipped:
        return "\n".join(
            [*head, *_devices(picks), "No profiled device fits any of the files: none shipped."]
        )
    return "\n".join(
        [*head, *_files(arts, shipped), *_devices(picks), *_how_to_feed(arts, shipped)]
    )
