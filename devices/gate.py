"""``python -m devices check``: re-judge a written profile.json against budgets, a CI gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ground import rundir, shipseal
from ground.errors import UserError
from ground.settle import settle

from . import budgets as _budgets

_RECORD_FIELDS = {
    "device": (str,),
    "artifact": (str,),
    "verdict": (str,),
    "budget": (dict,),
    "reasons": (list,),
    "latency_ms": (int, float, type(None)),
    "ram_bytes": (int, type(None)),
    "flash_bytes": (int, type(None)),
}


def _rerun(profile_json: Path) -> str:
    return f"tinyship profile --run {profile_json.parent.parent} --force"


def _profile_records(doc: Any, path: Path) -> list[dict]:
    """profile.json's records, each with the fields check reads and their types."""
    recs = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(recs, list):
        raise UserError(f"'{path}' has no records list. Re-run: {_rerun(path)}.")
    for i, r in enumerate(recs):
        for key, types in _RECORD_FIELDS.items():
            v = r.get(key) if isinstance(r, dict) else None
            if not isinstance(r, dict) or not isinstance(v, types) or isinstance(v, bool):
                raise UserError(
                    f"'{path}' records[{i}].{key} is {v!r}; expected "
                    f"{' or '.join(t.__name__ for t in types)}. Re-run: {_rerun(path)}."
                )
        if r["verdict"] == "not runnable" and not r["reasons"]:
            raise UserError(f"'{path}' records[{i}] is 'not runnable' without a reason.")
        band = r.get("latency_band")
        if (
            r["latency_ms"] is not None
            and r["verdict"] != "not runnable"
            and not (
                isinstance(band, dict)
                and all(isinstance(band.get(k), (int, float)) for k in BAND_EDGES)
            )
        ):
            raise UserError(
                f"'{path}' records[{i}] ({r['artifact']} on {r['device']}) has a latency without an "
                f"error band (latency_band with {', '.join(BAND_EDGES)}; issue 37): it was written "
                f"by an older profile step. Re-run: {_rerun(path)}."
            )
    return recs


BAND_EDGES = ("low_ms", "high_ms")
WITHIN = "fits within error"


def passes(row: dict) -> bool:
    """Whether a checked row passes the gate: 'fits', or 'fits within error' where the recipe's
    ``devices.allow_within_error`` allows it."""
    return row["verdict"] == "fits" or (row["verdict"] == WITHIN and bool(row.get("allowed")))


def check(
    run_dir: str | Path,
    budgets: dict[str, dict[str, float]] | None = None,
    artifacts: list[str] | None = None,
) -> tuple[bool, list[dict]]:
    """Re-judge profile.json against budgets: a CI gate.

    Devices checked: those named in ``budgets``, else in the recipe's budgets, else every
    profiled device. Without ``artifacts`` each checked device needs at least one fitting
    artifact (a device where nothing can be judged, e.g. no throughput figure, is reported
    as 'not judged' and gates only when a budget names it); with ``artifacts`` every named
    artifact must fit every checked device.
    """
    run_dir = Path(run_dir)
    settle(run_dir)  # a commit a kill left half done is finished, or refused with its fix
    shipseal.refuse_if_broken(run_dir)  # ship/ and the records are what was shipped
    recs, over = _read_profile(run_dir, budgets)
    known = sorted({r["device"] for r in recs})
    # a device the recipe budgets but `profile --devices` left out: reported, not a --budget error
    missing = [] if budgets else [d for d in over if d not in known]
    over = {d: b for d, b in over.items() if d not in missing}
    _refuse_unknown_names(recs, known, over, artifacts)
    checked = list(over) if over or missing else known
    rows, ok = [_not_profiled(d, known, run_dir) for d in missing], True
    for d in checked:
        device_ok = _check_device(d, recs, over, artifacts, rows)
        ok = ok and device_ok
    return ok, rows


def _not_profiled(d: str, known: list[str], run_dir: Path) -> dict:
    return {
        "device": d,
        "artifact": "-",
        "verdict": "not judged",
        "budget": {},
        "reasons": [
            f"the recipe budgets '{d}' but this profile did not include it (profiled: "
            f"{', '.join(known)}); to check it: tinyship profile --run {run_dir} --force "
            f"--devices {','.join([*[k for k in known if k != 'host'], d])}"
        ],
    }


def _read_profile(
    run_dir: Path, budgets: dict[str, dict[str, float]] | None
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """profile.json's records (refused when profile/ is stale) and the budgets that apply:
    the ones given, else the recipe's."""
    doc = rundir.read_json(run_dir / rundir.PROFILE, "profile (profile/profile.json)")
    card = rundir.read_json(run_dir / rundir.CARD, "student card (student/card.json)")
    stale = rundir.stale(run_dir)
    if "profile" in stale:
        raise UserError(
            f"profile/ is stale: {stale['profile']}. Re-run: {_rerun(run_dir / rundir.PROFILE)} "
            "before checking budgets."
        )
    section = _budgets.recipe_devices_section(card)
    over = budgets or section["budgets"] or {}
    recs = _profile_records(doc, run_dir / rundir.PROFILE)
    for r in recs:  # the recipe read now decides, as it decides the budgets
        r["within_error_allowed"] = bool(section["allow_within_error"])
    return recs, over


def _refuse_unknown_names(
    recs: list[dict], known: list[str], over: dict, artifacts: list[str] | None
) -> None:
    """A budget's device or an ``--artifact`` that is not in this profile is a UserError."""
    for d in over:
        if d not in known:
            raise UserError(
                f"--budget names device '{d}', which is not in this profile; profiled devices: {', '.join(known)}."
            )
    names = sorted({r["artifact"] for r in recs})
    for a in artifacts or []:
        if a not in names:
            raise UserError(
                f"--artifact '{a}' is not in this profile; artifacts: {', '.join(names)}."
            )


def _check_device(
    d: str, recs: list[dict], over: dict, artifacts: list[str] | None, rows: list[dict]
) -> bool:
    """Re-judge device ``d``'s records into ``rows``; whether the device passes the gate."""
    ok, fits_any = True, False
    for r in recs:
        if r["device"] != d or (artifacts and r["artifact"] not in artifacts):
            continue
        row = _rejudge(r, d, over)
        rows.append(row)
        fits_any |= passes(row)
        if artifacts and not passes(row):
            ok = False
    judged = any(r["verdict"] not in ("unknown", "not runnable") for r in rows if r["device"] == d)
    if not artifacts and not fits_any:
        if over or judged:
            ok = False
        else:  # nothing could be judged here (no figure, no runtime) and no budget was asked for
            rows.append(
                {
                    "device": d,
                    "artifact": "-",
                    "verdict": "not judged",
                    "budget": {},
                    "reasons": [
                        "no artifact could be judged on this device (unknown latency or not "
                        "runnable); give it a --budget to make it gate"
                    ],
                }
            )
    return ok


def _rejudge(r: dict, d: str, over: dict) -> dict:
    """One profile.json record judged again against its budget with ``over``'s figures on top."""
    b = {**r["budget"], **over.get(d, {})}
    v, reasons = _budgets.verdict(
        r["latency_ms"],
        r["ram_bytes"],
        r["flash_bytes"],
        r["reasons"][0] if r["verdict"] == "not runnable" else None,
        b,
        r.get("latency_band") if _judged_latency(r) else None,
    )
    allowed = bool(r.get("within_error_allowed"))
    if v == WITHIN:
        reasons.append(
            "passes: the recipe allows it (devices.allow_within_error: true)"
            if allowed
            else "fails check: set devices.allow_within_error: true in the recipe to accept it"
        )
    return {
        "device": d,
        "artifact": r["artifact"],
        "verdict": v,
        "reasons": reasons,
        "budget": b,
        "allowed": allowed,
        "passes": v == "fits" or (v == WITHIN and allowed),
    }


def _judged_latency(r: dict) -> bool:
    """Whether the record's band judges its latency (not a qemu-user timing, which is not judged)."""
    return not str((r.get("latency") or {}).get("timing", "")).startswith("emulated")
