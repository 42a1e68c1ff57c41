"""KWS student candidates on the MCU budgets, without training: latency, RAM and flash by the estimate.

Latency, RAM and flash of a full-int8 .tflite depend on its architecture, not on its weights (flash
also on the tensor names the flatbuffer keeps: 15.3 vs 17.6 KiB for a trained c24-b3-d2). For
each candidate of the recipe's ``student.search`` grid (and ``--extra`` variants) this builds the
registered student with random weights behind the shipped input normalization (``RawInput``, as
distill ships it), writes a run directory (card with the recipe's front-end, random calibration
rows), exports it with the export stage (``int8-full`` .tflite, TFLite Micro's arena measured), and
judges it with the devices stage's own steps (``plan -> analyse -> verdicts``; nothing measured)
under every inference stack the catalog has runs of on the budgeted MCUs: network + front-end
latency, RAM (TFLite Micro arena + front-end buffers), flash (the flatbuffer).

Accuracy is not measured here; this decides which candidates can fit before ``make kws`` trains
them. Writes ``benchmarks/results/kws_candidates.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EXTRA = (  # beside the grid: strided neighbours (widths between and below the grid's, four
    # blocks), a 5x5 first conv, and block_stride 1
    "dscnn-c16-b3-s2-d2,dscnn-c20-b3-s2-d2,dscnn-c28-b3-s2-d2,dscnn-c36-b3-s2-d2,"
    "dscnn-c44-b3-s2-d2,dscnn-c24-b4-s2-d2,dscnn-c32-b4-s2-d2,dscnn-c40-b4-s2-d2,"
    "dscnn-c48-b4-s2-d2,dscnn-c24-b3-s2-k5-d2,dscnn-c16-b2-s2,dscnn-c24-b3-s2"
)
_NAME = re.compile(r"dscnn-c(\d+)-b(\d+)-s([12])(?:-k([135]))?(?:-d([12]))?$")


def parse_names(text: str, base: dict) -> list[dict]:
    """``dscnn-c16-b3-s2[-k3][-d2],...`` -> student specs (the recipe's other dscnn keys kept)."""
    from distill.students import STUDENTS

    out = []
    for name in filter(None, (t.strip() for t in text.split(","))):
        m = _NAME.match(name)
        if not m:
            raise SystemExit(
                f"--extra: '{name}' is not dscnn-c<channels>-b<blocks>-s<1|2>[-k<1|3|5>][-d<1|2>]"
            )
        spec = {k: v for k, v in base.items() if k in STUDENTS["dscnn"].fields and k != "search"}
        spec.update(kind="dscnn", channels=int(m[1]), blocks=int(m[2]), first_stride=int(m[3]))
        if m[4]:
            spec["first_kernel"] = int(m[4])
        # no -d: the kind's default block stride, as spec_name writes it (not the recipe's)
        spec["block_stride"] = (
            int(m[5]) if m[5] else STUDENTS["dscnn"].fields["block_stride"].default
        )
        out.append(spec)
    return out


def write_student(run: Path, recipe: dict, spec: dict, seed: int) -> dict:
    """student/ with a random-weight student (shipped graph: RawInput + net) and its card."""
    import torch

    from distill.audio import FrontEnd
    from distill.students import RawInput, build_student, count_params_macs
    from ground import rundir

    fe = FrontEnd.from_section(recipe["data"].get("frontend"))
    shape = fe.shape
    torch.manual_seed(seed)
    net = build_student(spec, shape, 10)
    rng = np.random.default_rng(seed)
    mean, std = -5.0, 10.0  # MFCC-like scale; the values do not change latency, RAM or flash
    model = RawInput(net, shape, mean, std).eval()
    x = (mean + std * rng.standard_normal((256, *shape))).astype(np.float32)
    batch = torch.export.Dim("batch", min=1, max=65536)
    ep = torch.export.export(model, (torch.from_numpy(x[:4]),), dynamic_shapes=({0: batch},))
    cx = count_params_macs(net, shape)
    with rundir.staged_dir(run, "student", force=True) as out:
        torch.export.save(ep, out / "student.pt2")
        with torch.no_grad():
            probs = torch.softmax(ep.module()(torch.from_numpy(x[:64])), -1).numpy()
        y = probs.argmax(1).astype(np.int64)
        rundir.atomic_write_npz(out / "calibration.npz", x=x)
        rundir.atomic_write_npz(
            out / "holdout.npz", x=x[:64], y=y, teacher_probs=probs, student_probs=probs
        )
        card = {
            "schema": "tinyship.card/1",
            "run": run.name,
            "task": "classification",
            "input": {
                "name": "input",
                "shape": list(shape),
                "dtype": "float32",
                "layout": "NCHW",
                "raw": True,
                "normalization": {"mean": mean, "std": std, "note": "random-weight candidate"},
                "frontend": fe.card(),
                "network_input_shape": list(shape),
            },
            "output": {"name": "logits", "kind": "logits", "num_classes": 10},
            "labels": [str(i) for i in range(10)],
            "student": {
                "arch": json.dumps(spec, sort_keys=True),
                "spec": spec,
                "params": cx.params,
                "macs": cx.macs,
                "bytes": rundir.path_bytes(out / "student.pt2"),
            },
            "teacher": {"combine": "mean", "members": [], "bytes": None, "bytes_method": "none"},
            "metrics": {
                "holdout": {
                    "n": 64,
                    "teacher": {"accuracy": 1.0},
                    "members": {},
                    "student": {"accuracy": 1.0},
                    "baseline": {"accuracy": None},
                }
            },
            "sizes": {},
            "lineage": {
                "recipe_path": None,
                "recipe": recipe,
                "seed": seed,
                "versions": rundir.package_versions(),
                "created": _dt.datetime.now(_dt.UTC).isoformat(),
                "command": "benchmarks/kws_candidates.py (random weights: no accuracy)",
            },
            "sha256": {
                n: rundir.sha256_file(out / n)
                for n in ("student.pt2", "calibration.npz", "holdout.npz")
            },
        }
        rundir.atomic_write_json(out / "card.json", card)
    return {"params": cx.params, "macs": cx.macs}


def judge(run: Path, devices: list[str], stacks: list[str]) -> dict:
    """The devices stage's records per stack (no measurement: MCU latency from the stack alone)."""
    profile = importlib.import_module("devices.profile")  # the module, not the re-exported function
    from devices import stacks as _stacks

    p = profile.plan(run, devices, [], profile.Settings(), None, None, force=True)
    analyses = profile.analyse(p)
    est = profile.Estimator(None, None, {})
    out: dict = {"analysis": {}, "records": {}}
    for file, a in analyses.items():
        out["analysis"][file] = {
            "bytes": a.bytes,
            "macs": a.macs,
            "tflm_arena_bytes": a.tflm_arena_bytes,
            "n_ops": a.n_ops,
            "work": _stacks.work_of(a).by_kind,
            # conv/FC output elements: what a per-output (requantization) cost term would need
            "outputs": sum(o.out_elems for o in a.ops if o.cost_kind != "elementwise"),
        }
    for st in stacks:
        p.stack = st
        for r in profile.verdicts(p, analyses, [], est):
            if r.device_class != "mcu" or r.precision != "int8-full":
                continue
            lat = r.latency or {}
            out["records"].setdefault(r.device, {})[st] = {
                "latency_ms": r.latency_ms,
                "network_ms": lat.get("network_ms"),
                "frontend_ms": (lat.get("frontend") or {}).get("ms"),
                "ram_bytes": r.ram_bytes,
                "ram_frontend_bytes": (r.ram_frontend or {}).get("bytes"),
                "flash_bytes": r.flash_bytes,
                "verdict": r.verdict,
                "reasons": r.reasons,
            }
    return out


def stacks_on(catalog, boards: list[str]) -> list[str]:
    """Stacks with a published run on any of ``boards`` (the default stack first)."""
    names = [s.name for s in catalog.stacks.values() if {r["board"] for r in s.runs} & set(boards)]
    return sorted(names, key=lambda n: n != catalog.default_stack)


def _commit() -> str:
    from ground.provenance import code_commit

    return code_commit() or "unknown"


def _margin(r: dict, b: dict) -> str:
    """Spare share of the latency and RAM budgets ('-12%' = over by 12%)."""
    parts = []
    for key, budget_key, scale in (("latency_ms", "latency_ms", 1), ("ram_bytes", "ram_kb", 1024)):
        if r.get(key) is not None and b.get(budget_key):
            parts.append(f"{100 * (1 - r[key] / (b[budget_key] * scale)):+.0f}%")
    return " / ".join(parts) or "-"


def markdown(doc: dict) -> str:
    m4 = doc["board"]
    sts = doc["stacks"]
    b = doc["budget"]
    head = (
        ["candidate", "in grid", "MACs", "params"]
        + [f"ms on {s} (net + fe)" for s in sts]
        + ["RAM KiB (arena + fe)", "flash KiB", "fits on", f"margin on {doc['stack']}"]
    )
    lines = [
        "## kws_candidates",
        "",
        f"`python -m benchmarks.kws_candidates` on {doc['created'][:10]}, commit {doc['commit']} "
        f"(random weights; latency/RAM/flash only). Board {m4}, budget {b.get('latency_ms')} ms / "
        f"{b.get('ram_kb')} KiB RAM / {b.get('flash_kb')} KiB flash; the recipe names "
        f"{doc['stack']}. Estimator: {doc['estimator']}. "
        f"Front-end {doc['frontend_ms']:.2f} ms and {doc['frontend_ram_bytes']:,} B on every row.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for c in sorted(doc["candidates"], key=lambda c: c["macs"]):
        recs = c["records"].get(m4) or {}
        any_rec = next(iter(recs.values()), {})
        cells = [
            c["name"],
            "yes" if c["in_grid"] else "-",
            f"{c['macs']:,}",
            f"{c['params']:,}",
        ]
        for s in sts:
            r = recs.get(s) or {}
            cells.append(
                "-"
                if r.get("latency_ms") is None
                else f"{r['latency_ms']:.1f} ({r['network_ms']:.1f} + {r['frontend_ms']:.1f})"
            )
        ram = any_rec.get("ram_bytes")
        fe = any_rec.get("ram_frontend_bytes") or 0
        cells.append(
            "-" if ram is None else f"{ram / 1024:.1f} ({(ram - fe) / 1024:.1f} + {fe / 1024:.1f})"
        )
        fl = any_rec.get("flash_bytes")
        cells.append("-" if fl is None else f"{fl / 1024:.1f}")
        cells.append(
            ", ".join(s for s in sts if (recs.get(s) or {}).get("verdict") == "fits") or "none"
        )
        named = recs.get(doc["stack"]) or {}
        cells.append(_margin(named, b))
        lines.append("| " + " | ".join(cells) + " |")
    others = [d for d in doc["devices"] if d != m4]
    if others:
        lines += ["", f"Other budgeted MCUs, stack {doc['stack']} (ms per window; verdict):", ""]
        for c in sorted(doc["candidates"], key=lambda c: c["macs"]):
            parts = []
            for d in others:
                r = (c["records"].get(d) or {}).get(doc["stack"]) or {}
                if r.get("latency_ms") is not None:
                    parts.append(f"{d} {r['latency_ms']:.1f} ms {r['verdict']}")
            lines.append(f"- {c['name']}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.kws_candidates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "kws_fsdd.yaml"))
    ap.add_argument("--extra", default=EXTRA, help="more candidates: dscnn-c16-b3-s2,...")
    ap.add_argument("--work", default=str(ROOT / "build" / "kws_candidates"))
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--board", default="cortex-m4f-stm32l4r5")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import export
    from devices.catalog import load_catalog
    from devices.stacks import MODEL_NAME
    from ground.recipe import load_recipe, validate
    from tinyship.search import SEARCH_FIELDS, absolute_paths, candidates, spec_name

    recipe = absolute_paths(load_recipe(args.recipe), Path(args.recipe).resolve().parent)
    grid = validate("student.search", recipe["student"].get("search"), SEARCH_FIELDS)
    in_grid = candidates(recipe["student"], grid)
    names = {spec_name(s) for s in in_grid}
    specs = in_grid + [
        s for s in parse_names(args.extra, recipe["student"]) if spec_name(s) not in names
    ]
    budgets = (recipe.get("devices") or {}).get("budgets") or {}
    cat = load_catalog()
    mcus = [d for d in budgets if d in cat.devices and cat.devices[d].cls == "mcu"]
    sts = stacks_on(cat, [args.board])
    rows = []
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        name = spec_name(spec)
        print(f"kws_candidates: {i + 1}/{len(specs)} {name}", file=sys.stderr, flush=True)
        run = Path(args.work) / name
        cx = write_student(run, recipe, spec, args.seed)
        export.run(
            run,
            formats=["tflite"],
            precisions=["int8-full"],
            force=True,
            keep_going=True,
            thresholds={"agreement": 0.0},
            progress=False,
        )
        j = judge(run, mcus, sts)
        rows.append({"name": name, "spec": spec, "in_grid": name in names, **cx, **j})
    fe = next(iter(rows[0]["records"][args.board].values())) if rows else {}
    doc = {
        "schema": "tinyship.kws_candidates/1",
        "created": _dt.datetime.now(_dt.UTC).isoformat(),
        "commit": _commit(),
        "recipe": str(args.recipe),
        "board": args.board,
        "budget": budgets.get(args.board) or {},
        "budgets": {d: budgets[d] for d in mcus},
        "devices": mcus,
        "stacks": sts,
        "stack": cat.stack((recipe.get("devices") or {}).get("stack")).name,  # the recipe's
        "estimator": MODEL_NAME,  # every MCU latency here (devices/stacks.py)
        "frontend_ms": fe.get("frontend_ms"),
        "frontend_ram_bytes": fe.get("ram_frontend_bytes"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "candidates": rows,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "kws_candidates.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "kws_candidates.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
