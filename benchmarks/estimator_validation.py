"""Out-of-sample checks of the fast MCU estimators, and the error bands they earn (issue 37).

Run: ``nice -n 10 python -m benchmarks.estimator_validation [--write]`` (writes
benchmarks/results/estimator_validation.{md,json}; ``--write`` also writes the committed bands file
devices/estimator_bands.json with commit, machine, date and command). The zoo's files and emulated
cycles come from benchmarks/zoo_models.py (cached under build/zoo/; a cold cache builds and emulates
them first, tens of minutes).

1. The zoo (truth: emulated cycles). devices/zoo_fit.py's estimator, per core, each model left out
   of its core's fit and predicted (leave-one-model-out, LOMO); shares within +-10/15/25%. Then the
   fit on all v1 models scores the fresh zoo (zoo_models.FRESH), which no feature choice has seen.
2. The published MLPerf Tiny runs (truth: published latency), for devices/stacks.py (mcu-stack-v2,
   what records carry today), every run predicted from a joint fit without
   - that model on any stack (LOMO everywhere),
   - that board on any stack (LOBO everywhere),
   - both (LOMO + LOBO everywhere: a new model on a board with no run, i.e. a transferred board),
   and the stack's own LOBO as stacks.evaluate does it. The zoo estimator is set against the
   tflm-cmsis-nn runs too (fitted on no published run: out of sample by construction). Beside v2,
   mcu-stack-v3 (devices/stacks_v3.py: two factors per stack on the zoo's TFLM cycles) is scored
   under the same withholding and judged by rule V37 (benchmarks/estimator_v3.py); v3 was designed
   after seeing v2's misses, so only its LOBO scores are out of sample.
3. Bands: ratio = true / estimated, [min, max] of the held-out ratios (widened to include 1), per
   (estimator, core, stack, op mix, dtype, transferred) and pooled over op mixes / cores; written to
   devices/estimator_bands.json and read by devices/estimator_bands.band_for. A published miss is
   listed with the explanation a person stated for it (``STATED``; "unexplained" without one) and
   the band a record of that (core, stack, op mix) gets.
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ratios import pct as _pct  # noqa: E402
from benchmarks.ratios import ratio as _r  # noqa: E402
from benchmarks.ratios import within as _within  # noqa: E402

# The rule is fixed here, before any figure is computed, and printed before the results.
ZOO_TOL, ZOO_SHARE = 0.15, 0.90
PUB_TOL = 0.25
RULE = (
    f"PASS RULE (issue 37, fixed before the run): (a) zoo: on each of cortex-m4f, cortex-m7, "
    f"cortex-m33 and cortex-m55, the zoo estimator's leave-one-model-out estimate is within "
    f"+-{ZOO_TOL:.0%} of the emulated cycles for at least {ZOO_SHARE:.0%} of the zoo's models. "
    f"(b) published: every (model, board) run of the catalog's stacks, estimated by mcu-stack-v2 "
    f"with that model withheld from every stack's fit, is within +-{PUB_TOL:.0%} of the published "
    "latency; each miss is listed (whether a version difference explains it is stated beside it, "
    "not decided by this script)."
)
FRESH_RULE = (
    f"FRESH RULE (fixed before the fresh zoo was emulated; benchmarks/RESULTS.notes.md): the zoo "
    f"estimator fitted on all v1 zoo models scores each fresh-zoo model (zoo_models.FRESH: another "
    f"generator name and seed, same families and limits; no feature was chosen on it); per core it "
    f"passes when at least {ZOO_SHARE:.0%} are within +-{ZOO_TOL:.0%} of their emulated cycles."
)
# What a person found about a published miss (stack, model) -> explanation; the script only prints
# it. A miss without an entry is listed as "unexplained".
STATED = {
    (s, "ic"): (
        "no stated version difference: this run and the stack's runs of kws, ad and vww are one "
        f"submission (catalog stacks.{s}.calibration). Cause: an op mix unseen by the fit. With ic "
        "withheld, no calibration model has dense convolutions (kws and vww are depthwise-separable, "
        "ad is fully connected), whose outputs per MAC are far fewer (below), so mcu-stack-v2's "
        "split between per-MAC and per-output cost is extrapolated there"
    )
    for s in ("x-cube-ai", "microtvm-cmsis-nn", "tflm-cmsis-nn")
}
TOLS = (0.10, 0.15, 0.25)
PUB_RULES = ("lomo_everywhere", "lobo_everywhere", "lomo_lobo_everywhere", "lobo_this_stack")
BANDS_OUT = ROOT / "devices" / "estimator_bands.json"


def zoo_data(cores: tuple[str, ...], zoo: str = "v1") -> dict[str, list[dict]]:
    """Per core, every model of zoo ``zoo`` with its estimator features, op mix and emulated cycles."""
    from benchmarks import zoo_models
    from devices import analyse, stacks, zoo_fit
    from devices.estimator_bands import op_mix

    rows = zoo_models.emulate_all(cores, log=lambda s: print(s, flush=True), zoo=zoo)
    seen: dict[str, tuple[dict, str]] = {}
    out: dict[str, list[dict]] = {c: [] for c in cores}
    for r in rows:
        if r["cycles"] is None or not r["bit_exact"]["identical"]:
            print(f"zoo: {r['name']} on {r['core']} left out: not counted or not byte-exact")
            continue
        if r["path"] not in seen:
            a = analyse(Path(r["path"]))
            seen[r["path"]] = (zoo_fit.features(a), op_mix(stacks.work_of(a).by_kind))
        x, mix = seen[r["path"]]
        out[r["core"]].append({**r, "x": x, "op_mix": mix})
    return out


def _shares(rows: list[dict]) -> dict[str, float | None]:
    return {f"{t:.2f}": _within([x["ratio"] for x in rows], t) for t in TOLS}


def zoo_check(data: dict[str, list[dict]]) -> dict[str, dict]:
    """Per core: the fit on all models, LOMO rows (with op mix) and shares within each tolerance."""
    from devices import zoo_fit

    out = {}
    for core, rows in data.items():
        xs, cyc = [r["x"] for r in rows], [r["cycles"] for r in rows]
        lomo = zoo_fit.lomo(core, [r["name"] for r in rows], xs, cyc)
        for x, r in zip(lomo, rows):
            x.update(family=r["family"], macs=r["macs"], op_mix=r["op_mix"])
        out[core] = {"fit": zoo_fit.fit(core, xs, cyc), "lomo": lomo, "within": _shares(lomo),
                     "n": len(lomo)}  # fmt: skip
    return out


def fresh_check(zoo: dict[str, dict], data: dict[str, list[dict]]) -> dict[str, dict]:
    """Per core: each fresh-zoo model predicted by the core's fit on all v1 models."""
    out = {}
    for core, rows in ((c, rs) for c, rs in data.items() if c in zoo and rs):
        scored = []
        for r in rows:
            est = zoo[core]["fit"].predict(r["x"])
            scored.append({"name": r["name"], "family": r["family"], "macs": r["macs"],
                           "op_mix": r["op_mix"], "cycles": float(r["cycles"]), "estimate": est,
                           "ratio": float(r["cycles"]) / est if est > 0 else None})  # fmt: skip
        out[core] = {"rows": scored, "within": _shares(scored), "n": len(scored)}
    return out


def _predict(cat, fits: dict, run: dict, stack: str) -> float | None:
    from devices import stacks

    f, w = fits.get(stack), stacks.reference_work(cat, run["model"])
    s = None if f is None else f.predict_s(w, cat.devices[run["board"]])
    return None if s is None else s * 1e3


def published_check(cat) -> list[dict]:
    """One row per published run: true/estimated ratio under each withholding rule."""
    from devices import stacks
    from devices.estimator_bands import op_mix

    rules = {
        "lomo_everywhere": lambda run: lambda s, r: r["model"] == run["model"],
        "lobo_everywhere": lambda run: lambda s, r: r["board"] == run["board"],
        "lomo_lobo_everywhere": lambda run: lambda s, r: r["model"] == run["model"] or r["board"] == run["board"],
    }  # fmt: skip
    rows = []
    for name, st in cat.stacks.items():
        own_lobo = {(r["model"], r["board"]): r for r in stacks.leave_one_board_out(cat, name)}
        for run in st.runs:
            if run["board"] not in cat.devices or run["model"] not in cat.reference_models:
                continue
            dev = cat.devices[run["board"]]
            pub = 1e3 / run["inferences_per_s"]
            row = {
                "stack": name, "model": run["model"], "board": run["board"],
                "core": (dev.emulation or {}).get("core") or dev.core_family,
                "op_mix": op_mix(stacks.reference_work(cat, run["model"]).by_kind),
                "published_ms": pub,
            }  # fmt: skip
            for rule, excl in rules.items():
                tag = f"{rule}|{run['model']}|{run['board']}"
                est = _predict(cat, stacks.fit_all(cat, excl(run), tag), run, name)
                row[rule] = None if est is None else pub / est
            r = own_lobo.get((run["model"], run["board"]))
            row["lobo_this_stack"] = None if not r or not r["ratio"] else 1 / r["ratio"]
            rows.append(row)
    return rows


def zoo_on_published(cat, zoo: dict[str, dict]) -> list[dict]:
    """The zoo estimator (fitted on emulated cycles only) against the published tflm-cmsis-nn runs
    of the models whose files are here (ic and vww are known by their work only: not estimated)."""
    from devices import analyse, zoo_fit
    from devices.firmware import bands as fw_bands

    out, emulated = [], {}
    for run in cat.stacks["tflm-cmsis-nn"].runs if "tflm-cmsis-nn" in cat.stacks else []:
        dev = cat.devices.get(run["board"])
        core = ((dev.emulation or {}).get("core")) if dev else None
        path = fw_bands.reference_file(cat, run["model"])
        if core not in zoo or dev.clock_hz is None:
            continue
        if core not in emulated:  # the same files emulated on the core (cached by devices/firmware)
            runs = fw_bands.band(cat, core)["runs"]
            emulated[core] = {(r["model"], r["board"]): r.get("emulated_ms") for r in runs}
        pub = 1e3 / run["inferences_per_s"]
        row = {"model": run["model"], "board": run["board"], "core": core, "published_ms": pub,
               "emulated_ms": emulated[core].get((run["model"], run["board"])),
               "estimate_ms": None, "ratio": None, "note": "no model file here: not estimated"}  # fmt: skip
        if path is not None:
            cyc = zoo[core]["fit"].predict(zoo_fit.features(analyse(path)))
            est = cyc / dev.clock_hz * 1e3
            row.update(estimate_ms=est, ratio=pub / est, note=path.name)
        out.append(row)
    return out


def _entry(est: str, core: str, stack: str, mix: str, tr: bool, ratios: list[float], source: str,
           note: str) -> dict:  # fmt: skip
    lo, hi = min(min(ratios), 1.0), max(max(ratios), 1.0)  # widened to include 1, rounded outward
    return {"estimator": est, "core": core, "stack": stack, "op_mix": mix, "dtype": "int8",
            "transferred": tr, "ratio_low": math.floor(lo * 1e4) / 1e4, "ratio_high": math.ceil(hi * 1e4) / 1e4,
            "n": len(ratios), "source": source, "note": note}  # fmt: skip


def _grouped(rows: list[dict], key: str) -> dict[tuple[str, str], list[float]]:
    """Ratios of ``key`` per (core, op mix), with 'any' pooled over each and both."""
    from devices.estimator_bands import ANY

    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.get(key) is None:
            continue
        for c in (r["core"], ANY):
            for m in (r["op_mix"], ANY):
                out.setdefault((c, m), []).append(r[key])
    return out


def bands(zoo: dict[str, dict], pub: list[dict], fresh: dict | None = None) -> list[dict]:
    """Every band entry (see the module doc); the zoo's pool LOMO on v1 and the fresh zoo's scores."""
    from devices.zoo_fit import ESTIMATOR

    out = []
    zoo_rows = [{**x, "core": core} for core, z in zoo.items() for x in z["lomo"]]
    zoo_rows += [{**x, "core": core} for core, z in (fresh or {}).items() for x in z["rows"]]
    for (c, m), rs in sorted(_grouped(zoo_rows, "ratio").items()):
        out.append(_entry(ESTIMATOR, c, "tflm-cmsis-nn", m, False, rs,
                          "zoo leave-one-model-out vs emulated cycles, and the fresh zoo scored by "
                          "the fit on the v1 zoo",
                          "truth is the emulated cycle count (TFLM + CMSIS-NN, timing table of "
                          "devices/firmware/timing.py); the cycle model's own error against published "
                          "runs is devices/firmware/bands.py's, not included"))  # fmt: skip
    rules = (
        ("lomo_everywhere", False, "published MLPerf Tiny runs, model withheld from every stack's fit"),
        ("lomo_lobo_everywhere", True,
         "published MLPerf Tiny runs, model and board withheld from every stack's fit"),
    )  # fmt: skip
    for key, tr, source in rules:
        for stack in sorted({r["stack"] for r in pub}):
            rows = [r for r in pub if r["stack"] == stack]
            for (c, m), rs in sorted(_grouped(rows, key).items()):
                out.append(_entry("mcu-stack-v2", c, stack, m, tr, rs, source,
                                  "true = published latency (median inferences/s); "
                                  + ("the board's runs of every stack were out of the fit, as for a "
                                     "board without published runs" if tr else
                                     "the board's other runs stayed in the fit")))  # fmt: skip
    return no_narrower_when_transferred(out)


def no_narrower_when_transferred(entries: list[dict]) -> list[dict]:
    """A transferred band at least spans the same key's band on boards with runs (a board with no
    run of its stack is never claimed more precise than one with runs); said in its note."""
    key = lambda e: (e["estimator"], e["stack"], e["core"], e["op_mix"])  # noqa: E731
    own = {key(e): e for e in entries if not e["transferred"]}
    for e in entries:
        o = own.get(key(e))
        if not (e["transferred"] and o):
            continue
        lo, hi = min(e["ratio_low"], o["ratio_low"]), max(e["ratio_high"], o["ratio_high"])
        if (lo, hi) != (e["ratio_low"], e["ratio_high"]):
            e["ratio_low"], e["ratio_high"] = lo, hi
            e["note"] += "; widened to span the band of boards with runs"
    return entries


def widest(entries: list[dict], extra: list[float]) -> dict:
    """The envelope of every band and of ``extra`` held-out ratios (the zoo estimator against the
    published runs): what a record gets when its class has no data of its own."""
    lo = min([e["ratio_low"] for e in entries] + extra + [1.0])
    hi = max([e["ratio_high"] for e in entries] + extra + [1.0])
    n = sum(e["n"] for e in entries if e["core"] == "any" and e["op_mix"] == "any") + len(extra)
    return {
        "ratio_low": math.floor(lo * 1e4) / 1e4,
        "ratio_high": math.ceil(hi * 1e4) / 1e4,
        "n": n,
        "source": "envelope of every band in this file and of the zoo estimator on published runs",
        "note": f"{lo:.2f}-{hi:.2f}x, the widest range of true/estimated seen in any held-out check",
    }


def _miss_list(rows: list[dict]) -> str:
    out = [f"{x['name']} {x['ratio']:.2f}" for x in rows if abs(1 / x["ratio"] - 1) > ZOO_TOL]
    return ", ".join(out) or "none"


def zoo_lines(zoo: dict[str, dict], fresh: dict[str, dict]) -> tuple[list[str], dict[str, bool]]:
    """The zoo table (per core: LOMO shares, worst, PASS/FAIL under part (a); the fresh zoo's share
    under FRESH_RULE beside it) and the verdicts of part (a)."""
    from devices.zoo_fit import features_for

    lines = ["## Zoo: leave-one-model-out vs emulated cycles, and the fresh zoo", "",
             "| core | models | within +-10% | within +-15% | within +-25% | worst true/est | rule (a) "
             "| fresh models | fresh within +-10% | fresh within +-15% | fresh worst | fresh rule |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ok = {}
    for core, z in zoo.items():
        worst = max((x["ratio"] for x in z["lomo"]), key=lambda r: abs(1 / r - 1))
        share = z["within"][f"{ZOO_TOL:.2f}"]
        ok[core] = share is not None and share >= ZOO_SHARE
        fr = fresh.get(core)
        fcols = "| 0 | - | - | - | not run"
        if fr:
            fw = max((x["ratio"] for x in fr["rows"]), key=lambda r: abs(1 / r - 1))
            fs = fr["within"][f"{ZOO_TOL:.2f}"]
            fcols = (f"| {fr['n']} | {_pct(fr['within']['0.10'])} | {_pct(fs)} | {_r(fw)} | "
                     f"{'PASS' if fs is not None and fs >= ZOO_SHARE else 'FAIL'}")  # fmt: skip
        lines.append(f"| {core} | {z['n']} | {_pct(z['within']['0.10'])} | {_pct(share)} | "
                     f"{_pct(z['within']['0.25'])} | {_r(worst)} | {'PASS' if ok[core] else 'FAIL'} "
                     f"{fcols} |")  # fmt: skip
    lines += ["", "Models outside +-15% (true/estimated):", ""]
    for core, z in zoo.items():
        lines.append(f"- {core}: LOMO {_miss_list(z['lomo'])}"
                     + (f"; fresh {_miss_list(fresh[core]['rows'])}" if core in fresh else ""))  # fmt: skip
    sets: dict[tuple[str, ...], list[str]] = {}
    for core in zoo:
        sets.setdefault(features_for(core), []).append(core)
    for names, cores in sets.items():
        lines += ["", f"Fitted cycle costs on all v1 zoo models, {', '.join(cores)} "
                  "(per MAC / output / element / loop iteration / op / invoke):", "",
                  "| core | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
        for core in cores:
            th = zoo[core]["fit"].theta
            lines.append(f"| {core} | " + " | ".join(f"{th[f]:.3g}" for f in names) + " |")
    return lines, ok


def published_lines(pub: list[dict], zp: list[dict]) -> tuple[list[str], list[dict]]:
    """The published table (true/estimated under each rule) and the misses under part (b)."""
    lines = ["## Published MLPerf Tiny runs: mcu-stack-v2 held out (true/estimated)", "",
             "| stack | model | board | published ms | LOMO every stack | LOBO every stack | "
             "LOMO+LOBO every stack | LOBO this stack | rule (b) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    misses = [
        r for r in pub if not r["lomo_everywhere"] or abs(1 / r["lomo_everywhere"] - 1) > PUB_TOL
    ]
    for r in pub:
        lo, ok = r["lomo_everywhere"], r not in misses
        lines.append(f"| {r['stack']} | {r['model']} | {r['board']} | {r['published_ms']:.2f} | {_r(lo)} | "
                     f"{_r(r['lobo_everywhere'])} | {_r(r['lomo_lobo_everywhere'])} | "
                     f"{_r(r['lobo_this_stack'])} | {'ok' if ok else 'MISS'} |")  # fmt: skip
    lines += ["", "Share within +-10% / +-25% per stack and rule:", "",
              "| stack | rule | runs scored | within +-10% | within +-25% |", "|---|---|---|---|---|"]  # fmt: skip
    for stack in sorted({r["stack"] for r in pub}):
        for rule in PUB_RULES:
            rs = [r[rule] for r in pub if r["stack"] == stack and r[rule] is not None]
            lines.append(f"| {stack} | {rule} | {len(rs)} | {_pct(_within(rs, 0.10))} | "
                         f"{_pct(_within(rs, 0.25))} |")  # fmt: skip
    lines += ["", "## The zoo estimator against the published tflm-cmsis-nn runs (fitted on none)", "",
              "| model | board | core | published ms | emulated ms | zoo estimate ms | published/estimate | "
              "emulated/estimate |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in zp:
        em = r["emulated_ms"] / r["estimate_ms"] if r["emulated_ms"] and r["estimate_ms"] else None
        lines.append(f"| {r['model']} | {r['board']} | {r['core']} | {r['published_ms']:.2f} | "
                     f"{_r(r['emulated_ms'])} | {_r(r['estimate_ms'])} | {_r(r['ratio'])} | {_r(em)} "
                     f"({r['note']}) |")  # fmt: skip
    lines += ["", "The published runs used TensorFlow Lite Micro v2.3.1 with the CMSIS-NN of 2020 "
              "(catalog stacks.tflm-cmsis-nn.calibration); the emulated firmware is built from the newer "
              "tree in ../shared/vendor/tflite-micro, and its cycles come from a timing table without "
              "memory wait states: the published/emulated gap is that difference, not the zoo fit's."]  # fmt: skip
    return lines, misses


def band_lines(entries: list[dict]) -> list[str]:
    lines = ["## Bands (true/estimated) written to devices/estimator_bands.json", "",
             "| estimator | stack | core | op mix | transferred | low | high | n |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {e['estimator']} | {e['stack']} | {e['core']} | {e['op_mix']} | {e['transferred']} | "
              f"{e['ratio_low']:.2f} | {e['ratio_high']:.2f} | {e['n']} |" for e in entries]  # fmt: skip
    return lines


def miss_lines(cat, misses: list[dict], doc: dict) -> list[str]:
    """Each published miss with its stated explanation (or 'unexplained'), the outputs per conv MAC
    of its model beside the other models', and the band a record of its class gets."""
    from devices import stacks
    from devices.estimator_bands import band_for

    works = {k: stacks.reference_work(cat, k) for k in cat.reference_models}
    macs = {k: sum(w.by_kind.get(c, 0) for c in stacks.CONV_KINDS) for k, w in works.items()}
    per = {k: works[k].outputs / macs[k] if macs[k] else None for k in works}
    out = []
    for m in misses:
        why = STATED.get((m["stack"], m["model"]), "unexplained")
        rest = ", ".join(f"{k} {_r(v, 4)}" for k, v in per.items() if v and k != m["model"])
        b = band_for(m["core"], m["stack"], m["op_mix"], "int8", False, doc=doc)
        covered = b["ratio_low"] <= m["lomo_everywhere"] <= b["ratio_high"]
        out.append(
            f"- {m['stack']}/{m['model']}/{m['board']} {_r(m['lomo_everywhere'])}: {why}. Outputs per "
            f"conv MAC: {m['model']} {_r(per[m['model']], 4)}; {rest}"
            f". Band of a {m['op_mix']} record on {m['core']} ({m['stack']}, int8, board with runs): "
            f"{b['ratio_low']:.2f}-{b['ratio_high']:.2f} (n {b['n']}; {b['note'] or b['source']}): "
            f"{'covers' if covered else 'does NOT cover'} the miss"
        )
    return out


def _doc(rep, entries: list[dict], zp: list[dict], zoo: dict, fresh: dict) -> dict:
    """The bands document devices/estimator_bands.json holds (with its provenance)."""
    from benchmarks import common, zoo_models
    from devices.estimator_bands import SCHEMA
    from devices.zoo_fit import ESTIMATOR, NAME, features_for

    mach = common.machine()
    return {
        "schema": SCHEMA,
        "generated": {"commit": rep.commit or "not recorded",
                      "machine": mach["cpu"] + f", {mach['cores']} cores",
                      "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                      "command": rep.command},
        "widest": widest(entries, [r["ratio"] for r in zp if r["ratio"]]),
        "bands": entries,
        "zoo_fit": {"estimator": ESTIMATOR, "name": NAME, "generator": zoo_models.GENERATOR,
                    "fresh_generator": zoo_models.FRESH["generator"],
                    "cores": {c: {"features": list(features_for(c)), "theta": z["fit"].theta,
                                  "n_models": z["n"], "lomo_within_15": z["within"]["0.15"],
                                  "fresh_within_15": (fresh.get(c) or {}).get("within", {}).get("0.15"),
                                  "fresh_n": (fresh.get(c) or {}).get("n", 0)}
                              for c, z in zoo.items()}},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmarks import common, estimator_v3, zoo_models
    from devices import load_catalog
    from devices.estimator_bands import check_document

    ap = argparse.ArgumentParser(prog="python -m benchmarks.estimator_validation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--write", action="store_true", help="also write devices/estimator_bands.json")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    a = ap.parse_args(argv)
    print(RULE, FRESH_RULE, estimator_v3.RULE_V3, sep="\n", flush=True)
    rep = common.Report("estimator_validation", "Fast MCU estimators out of sample (issue 37)",
                        common.command_line("estimator_validation"),
                        {"zoo_models": zoo_models.N_MODELS, "generator": zoo_models.GENERATOR,
                         "fresh_models": zoo_models.FRESH["n"],
                         "fresh_generator": zoo_models.FRESH["generator"],
                         "cores": ",".join(zoo_models.CORES)})  # fmt: skip
    zoo = zoo_check(zoo_data(zoo_models.CORES))
    fresh = fresh_check(zoo, zoo_data(zoo_models.CORES, "fresh"))
    cat = load_catalog()
    pub = published_check(cat)
    zp = zoo_on_published(cat, zoo)
    entries = bands(zoo, pub, fresh)
    doc = _doc(rep, entries, zp, zoo, fresh)
    zl, zoo_ok = zoo_lines(zoo, fresh)
    pl, misses = published_lines(pub, zp)
    pub3, k3 = estimator_v3.published_v3(cat, zoo, pub)
    v37 = estimator_v3.verdict(pub, pub3)
    fr_ok = {c: (f["within"]["0.15"] or 0) >= ZOO_SHARE for c, f in fresh.items()}
    verdict = [
        "## Outcome in the rule's words", "", RULE, "", FRESH_RULE, "",
        "(a) " + "; ".join(f"{c}: {'PASS' if ok else 'FAIL'} ({_pct(zoo[c]['within'][f'{ZOO_TOL:.2f}'])} "
                           f"of {zoo[c]['n']} within +-{ZOO_TOL:.0%})" for c, ok in zoo_ok.items()),
        "(fresh) " + "; ".join(f"{c}: {'PASS' if ok else 'FAIL'} ({_pct(fresh[c]['within']['0.15'])} of "
                               f"{fresh[c]['n']} within +-{ZOO_TOL:.0%})" for c, ok in fr_ok.items()),
        "(b) " + ("PASS: every run within +-25% with its model withheld from every stack's fit"
                  if not misses else f"FAIL: {len(misses)} of {len(pub)} runs outside +-25%; each with "
                  "what a person stated about it (a version difference or not) and its band:"),
        "", *miss_lines(cat, misses, doc), "", estimator_v3.RULE_V3, "", estimator_v3.headline(v37),
    ]  # fmt: skip
    for block in (verdict, zl, pl, estimator_v3.lines(pub, pub3, v37, k3), band_lines(entries)):
        rep.add("\n".join(block))
    rep.data = {
        "rule": RULE, "fresh_rule": FRESH_RULE,
        "zoo": {c: {"within": z["within"], "n": z["n"], "theta": z["fit"].theta, "lomo": z["lomo"]}
                for c, z in zoo.items()},
        "fresh": fresh, "published": pub, "zoo_on_published": zp, "bands": entries,
        "pass": {"zoo": zoo_ok, "fresh": fr_ok, "published_misses": len(misses)},
        "misses": [{**m, "stated": STATED.get((m["stack"], m["model"]), "unexplained")}
                   for m in misses],
        "v3": {"rule": estimator_v3.RULE_V3, "published": pub3, "factors": k3, "verdict": v37},
    }  # fmt: skip
    rep.write(a.out_dir)
    if a.write:
        return common.write_checked(BANDS_OUT, doc, check_document(doc), "bands document")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
