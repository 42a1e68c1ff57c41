"""``python -m devices profile|check|catalog``: a thin argparse layer over devices.profile/check."""

from __future__ import annotations

import argparse
import json
import sys

from ground.cli import run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devices", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    _add_profile(sub)
    ck = sub.add_parser("check", help="exit 1 when an artifact does not fit its budget (CI gate)")
    ck.add_argument("--run", required=True, help="run directory with profile/, e.g. build/demo")
    ck.add_argument(
        "--budget", action="append", default=[], help="DEVICE:latency_ms=..,ram_kb=..,flash_kb=.."
    )
    ck.add_argument(
        "--artifact",
        action="append",
        default=[],
        help="require this artifact to fit every checked device",
    )
    ca = sub.add_parser("catalog", help="print the device catalog")
    ca.add_argument("--catalog", default=None, help="extra catalog YAML (adds or replaces devices)")
    ca.add_argument("--json", action="store_true", help="print the catalog as JSON")
    return p


def _add_profile(sub: argparse._SubParsersAction) -> None:
    """The ``profile`` subcommand: what to profile, where to measure, how, against which budgets."""
    pr = sub.add_parser(
        "profile",
        help="analyse, measure and estimate every exported artifact (--run) or any model FILE",
    )
    pr.add_argument(
        "files", nargs="*", metavar="FILE", help=".onnx/.tflite files made anywhere (needs no run)"
    )
    pr.add_argument("--run", default=None, help="run directory, e.g. build/demo")
    pr.add_argument(
        "--out",
        default="build/profile",
        help="with FILE...: the run dir to build (default build/profile)",
    )
    pr.add_argument("--force", action="store_true", help="replace existing profile/ and ship/")
    pr.add_argument(
        "--devices",
        default=None,
        help="comma-separated catalog names (default: recipe targets or all)",
    )
    pr.add_argument(
        "--ssh",
        action="append",
        default=[],
        metavar="USER@HOST",
        help="measure on a Linux board over ssh",
    )
    pr.add_argument(
        "--ssh-config", default=None, help="ssh -F config file (default: your own ~/.ssh/config)"
    )
    pr.add_argument(
        "--ssh-option", action="append", default=[], help="extra ssh -o option, e.g. Port=2222"
    )
    pr.add_argument(
        "--remote-python", default="python3", help="python on the board (needs numpy + a runtime)"
    )
    pr.add_argument(
        "--adb", action="append", default=[], metavar="SERIAL", help="measure on an Android phone"
    )
    pr.add_argument(
        "--benchmark-model", default=None, help="TFLite benchmark_model binary for the phone"
    )
    pr.add_argument("--threads", type=int, default=None, help="threads for measured runs")
    pr.add_argument("--runs", type=int, default=None, help="timed runs per file")
    pr.add_argument("--warmup", type=int, default=None, help="untimed runs before timing")
    pr.add_argument("--pin-core", type=int, default=None, help="pin measured runs to this CPU core")
    pr.add_argument("--catalog", default=None, help="extra catalog YAML (adds or replaces devices)")
    pr.add_argument(
        "--stack",
        default=None,
        help="MCU inference stack the estimates model (catalog 'stacks:'; default: the recipe's "
        "devices.stack, else tflm-cmsis-nn)",
    )
    pr.add_argument(
        "--budget", action="append", default=[], help="DEVICE:latency_ms=..,ram_kb=..,flash_kb=.."
    )
    pr.add_argument(
        "--emulate", action="store_true", help="build MCU/PDA firmware and run it in QEMU"
    )


def _device_json(cat, d) -> dict:
    """A catalog device as JSON, with the MCU stacks that estimate it (its own published runs of each
    stack, or where the stack's costs are transferred from); other classes use the host fit."""
    from .stacks import transfer_note

    stacks = [
        {
            "name": st.name,
            "title": st.title,
            "default": st.name == cat.default_stack,
            "runs_on_this_board": [r for r in st.runs if r["board"] == d.name],
            "transfer": transfer_note(cat, st.name, d),
        }
        for st in cat.stacks.values()
        if d.cls == "mcu"
    ]
    return {**d.to_dict(), "stacks": stacks}


def main(argv: list[str] | None = None) -> int:
    from .budgets import parse_budget_flag

    args = _parser().parse_args(argv)
    budgets = dict(parse_budget_flag(b) for b in getattr(args, "budget", []) or [])
    if args.cmd == "catalog":
        return _catalog(args)
    if args.cmd == "check":
        return _check(args, budgets)
    return _profile(args, budgets)


def _catalog(args: argparse.Namespace) -> int:
    """``catalog``: print every device's figures and every MCU stack (or all of it as JSON)."""
    from .catalog import load_catalog

    cat = load_catalog(args.catalog)
    if args.json:
        print(json.dumps({n: _device_json(cat, d) for n, d in cat.devices.items()}, indent=2))
        return 0
    for d in cat.devices.values():
        print(f"{d.name}  [{d.cls}]  {d.title}")
        for k, f in d.figures.items():
            print(f"    {k:22s} {str(f.value):>14s}   source: {f.source}")
        print(f"    formats: {', '.join(d.formats)}; budget: {d.budget}")
    for st in cat.stacks.values():
        print(f"stack {st.name}{' (default)' if st.default else ''}: {st.title}")
        print(f"    calibrated on {st.calibration}")
        for r in st.runs:
            print(
                f"      {r['model']:5s} {r['board']:22s} {r['inferences_per_s']:>9} inferences/s   "
                f"source: {r['source']}"
            )
    return 0


def _check(args: argparse.Namespace, budgets: dict) -> int:
    """``check``: one line per judged row, then PASS (0) or FAIL (1)."""
    from .profile import check

    ok, rows = check(args.run, budgets or None, args.artifact or None)
    for r in rows:
        print(f"{r['device']:24s} {r['artifact']:32s} {r['verdict']:18s} {'; '.join(r['reasons'])}")
    print("check: PASS" if ok else "check: FAIL (an artifact does not fit; see above)")
    return 0 if ok else 1


def _profile(args: argparse.Namespace, budgets: dict) -> int:
    """``profile``: a run directory, or model files built into one first; then the summary."""
    from .profile import Settings, adb_targets, profile, ssh_targets

    if bool(args.files) == bool(args.run):
        from ground.errors import UserError

        raise UserError(
            "profile takes either --run DIR (an exported run) or model FILEs (.onnx/.tflite), not "
            f"{'both' if args.files else 'neither'}. Example: python -m devices profile m.tflite --out build/p"
        )
    if args.files:
        from .files import build_run

        args.run = str(build_run(args.files, args.out, force=args.force))
        args.force = True
    targets = ssh_targets(args.ssh, args.ssh_config, args.ssh_option, args.remote_python)
    targets += adb_targets(args.adb, args.benchmark_model)
    rep = profile(
        args.run,
        devices=args.devices.split(",") if args.devices else None,
        targets=targets,
        settings=Settings(args.threads, args.runs, args.warmup, args.pin_core),
        catalog=args.catalog,
        budgets=budgets or None,
        force=args.force,
        stack=args.stack,
        emulate=args.emulate,
    )
    _print_summary(rep)
    return 0


def _print_summary(rep) -> None:
    """What was measured, the host estimator's leave-one-out error, and what ships."""
    loo = rep.estimator["loo"]
    print(
        f"profile: {len(rep.analyses)} artifacts x {len({r.device for r in rep.records})} devices -> {rep.path}"
    )
    for r in rep.records:
        if r.method == "measured":
            print(
                f"  measured {r.device:10s} {r.artifact:30s} p50 {r.latency_ms:.4f} ms  ({r.latency['runtime']}, "
                f"{r.latency['threads']} thread(s))"
            )
    print(
        f"host estimator leave-one-out error on its calibration set: median APE "
        f"{'n/a' if loo['median_ape'] is None else format(loo['median_ape'], '.1f') + ' %'} over {loo['n']} artifacts"
        + (f" ({loo['note']})" if loo["median_ape"] is None else "")
    )
    for row in loo["per_artifact"]:
        print(
            f"    {row['artifact']:30s} measured {row['measured_ms']:.4f} ms  predicted {row['predicted_ms']:.4f} ms  "
            f"APE {row['ape_pct']:.1f} %"
        )
    from .firmware import summary_lines

    for line in summary_lines(rep.records):
        print(line)
    print(
        f"ship: {len(rep.ship)} artifact(s) fit at least one device: {', '.join(rep.ship) or 'none'}"
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
