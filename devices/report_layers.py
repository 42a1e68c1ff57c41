"""The report's per-layer table: each operator's cost, and its share of the cost model's estimate."""

from __future__ import annotations

from ground.recommend import size

LAYER_HEAD = [
    "#",
    "operator",
    "kind",
    "compute",
    "MACs",
    "weights",
    "activations in",
    "activations out",
    "est. share of time",
]


def _device(d: dict):
    """A catalog Device rebuilt from its copy in profile.json."""
    from .catalog import Device, Figure

    return Device(
        d["name"],
        d["class"],
        d.get("title", ""),
        {
            k: Figure(f.get("value"), f.get("source", ""), f.get("derivation"))
            for k, f in d["figures"].items()
        },
        d.get("formats", []),
        d.get("runtime", {}),
        d.get("budget", {}),
        d.get("published", []),
    )


def op_shares(doc: dict, file: str, device: str) -> list[float] | None:
    """Each operator's share of the estimated latency on ``device`` (the cost model's own per-op terms)."""
    from .analysis import Analysis, OpCost
    from .estimate import Fit

    params = (doc.get("estimator") or {}).get("params")
    dev = next((d for d in doc.get("devices", []) if d["name"] == device), None)
    a = doc["artifacts"].get(file)
    if not params or dev is None or not a or not a.get("ops"):
        return None
    try:
        fit, d = Fit(dict(params), 0, "host"), _device(dev)
        fam = "onnxruntime" if file.endswith(".onnx") else "litert"
        base = {**a, "ops": [], "n_ops": 0}
        call = Fit.predict_s(fit, Analysis(**base), d, fam)
        times = []
        for o in a["ops"]:
            t = fit.predict_s(Analysis(**{**base, "ops": [OpCost(**o)], "n_ops": 1}), d, fam)
            times.append(max((t or 0.0) - (call or 0.0), 0.0))
    except (TypeError, KeyError, ValueError, ZeroDivisionError):
        return None
    total = sum(times)
    return [t / total for t in times] if total > 0 else None


def layer_rows(doc: dict, file: str, device: str) -> tuple[list[list[str]], str]:
    a = doc["artifacts"][file]
    shares = op_shares(doc, file, device)
    total_macs = sum(o["macs"] for o in a.get("ops", [])) or 1
    rows = []
    for i, o in enumerate(a.get("ops", [])):
        share = (
            f"{100 * shares[i]:.1f}%"
            if shares
            else f"({100 * o['macs'] / total_macs:.1f}% of MACs)"
        )
        rows.append(
            [
                str(o["index"]),
                o["op"],
                o["kind"],
                o["dtype"],
                f"{o['macs']:,}",
                size(o["weight_bytes"]),
                size(o["in_bytes"]),
                size(o["out_bytes"]),
                share,
            ]
        )
    note = (
        f"share of the cost model's estimate on {device} (per-op compute or memory time plus per-op overhead)"
        if shares
        else "the cost model could not be evaluated for this device; share of MACs shown instead"
    )
    return rows, note
