"""Error bands of the fast latency estimates, earned out of sample, looked up per record.

A band is the range of ``ratio = true / estimated`` seen when the thing being estimated was left out
of the fit: on the generated zoo, each model withheld from its core's fit and scored against its
emulated cycles (leave-one-model-out); on the published MLPerf Tiny runs, each model withheld from
every stack's fit, and each board withheld from its stack's fit (leave-one-board-out). A latency
``L`` with band ``b`` means the truth lies in ``[L x b.ratio_low, L x b.ratio_high]`` on the data
the band was measured on; ``n`` says how many held-out cases that was.

The bands live in ``devices/estimator_bands.json``, written by
``python -m benchmarks.estimator_validation --write`` (with commit, machine, date and command); this
module only reads them. Rules (issue 37):

- a band is looked up within its class (stack, dtype, transferred) and never borrowed across
  classes: a board with no published run of its stack (``transferred``) gets a transferred band,
  an fp32 extrapolation an fp32 band;
- within a class, an exact (core, op mix) band is preferred; then the class's band pooled over op
  mixes on that core, then pooled over cores (the note says which was used); a band of fewer than
  ``MIN_N`` held-out cases is passed over for the next one (two cases make no range);
- no record without a band: with no data for the class, ``band_for`` returns the file's widest band
  (the envelope of every held-out ratio measured, of any class) with a note saying why, never None.
"""

from __future__ import annotations

from pathlib import Path

from ground.errors import UserError

from . import committed_table

BANDS_FILE = Path(__file__).with_name("estimator_bands.json")
SCHEMA = "tinyship.estimator_bands/1"
OP_MIXES = ("conv", "separable", "fc", "elementwise", "mixed")
ANY = "any"
DTYPES = ("int8", "fp32")
BAND_KEYS = ("ratio_low", "ratio_high", "n", "source", "note")
ENTRY_KEYS = ("estimator", "core", "stack", "op_mix", "dtype", "transferred", *BAND_KEYS)
# The estimators with bands: devices/stacks.py (what records carry today) and devices/zoo_fit.py.
ESTIMATORS = ("mcu-stack-v2", "zoo-cycles-v2")
DEFAULT_ESTIMATOR = "mcu-stack-v2"
# Used only when the bands file itself is missing or unreadable (a broken checkout): a chosen,
# deliberately wide range, not a measurement; the note says so.
NO_FILE_BAND = (0.1, 10.0)
MAC_KINDS = ("conv", "pointwise", "depthwise", "fc")
DOMINANT = 0.5  # share of the MACs that makes a kind the mix's name
MIN_N = 3  # a band of fewer held-out cases is passed over for the next, more pooled one


def op_mix(work_by_kind: dict) -> str:
    """The op mix a model's work falls in, from its work per cost kind (``stacks.Work.by_kind``).

    ``conv`` (dense convolutions hold at least half the MACs), ``separable`` (pointwise + depthwise
    do), ``fc`` (fully-connected layers do), ``mixed`` (no kind does), ``elementwise`` (no MACs at
    all: pooling, adds, concatenations). Bands differ by mix because the estimator's error does: a
    separable net's cost sits in per-output requantization and short depthwise loops, a dense
    conv's in the MAC loop."""
    if not isinstance(work_by_kind, dict):
        raise UserError(
            f"op_mix needs a dict of work per cost kind (e.g. {{'conv': 1e6, 'fc': 2e4}}); got "
            f"{type(work_by_kind).__name__}"
        )
    macs = {k: float(work_by_kind.get(k, 0) or 0) for k in MAC_KINDS}
    bad = {k: v for k, v in macs.items() if v < 0}
    if bad:
        raise UserError(f"op_mix: work per kind must be >= 0; got {bad}")
    total = sum(macs.values())
    if total <= 0:
        return "elementwise"
    if macs["conv"] >= DOMINANT * total:
        return "conv"
    if macs["pointwise"] + macs["depthwise"] >= DOMINANT * total:
        return "separable"
    if macs["fc"] >= DOMINANT * total:
        return "fc"
    return "mixed"


def check_document(doc: object) -> str | None:
    """Why ``doc`` is not a valid bands document (None: it is)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return f"not a {SCHEMA} document"
    for k in ("generated", "widest", "bands"):
        if k not in doc:
            return f"missing key '{k}'"
    for k in ("commit", "machine", "date", "command"):
        if not doc["generated"].get(k):
            return f"generated.{k} is empty"
    entries = [doc["widest"], *doc["bands"]]
    for i, e in enumerate(entries):
        missing = [k for k in (BAND_KEYS if i == 0 else ENTRY_KEYS) if k not in e]
        if missing:
            return f"band {i} lacks {missing}"
        lo, hi = e["ratio_low"], e["ratio_high"]
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 < lo <= hi):
            return f"band {i} has ratio_low {lo!r} > ratio_high {hi!r} or a non-positive edge"
        if i and e["estimator"] not in ESTIMATORS:
            return f"band {i} has estimator {e['estimator']!r}, not one of {ESTIMATORS}"
        if i and (e["op_mix"] not in (*OP_MIXES, ANY) or e["dtype"] not in DTYPES):
            return f"band {i} has op_mix {e['op_mix']!r} or dtype {e['dtype']!r} outside the allowed set"
    return None


def document(path: Path | None = None) -> dict | str:
    """The bands document (cached while the file is unchanged), or why it is unusable."""
    p = Path(path or BANDS_FILE)
    try:
        return committed_table.read(p, check_document)
    except committed_table.TableError as e:
        if e.kind == "missing":
            return (
                f"{p} is missing; write it with: python -m benchmarks.estimator_validation --write"
            )
        return f"{p} could not be read ({e.detail})" if e.kind == "unreadable" else e.detail


def _dtype(dtype: str) -> str:
    """'int8', 'fp32' or the first word of a record's dtype text (e.g. 'fp32 (fp32 on the ...)')."""
    if not isinstance(dtype, str) or not dtype.strip():
        raise UserError(f"band_for: dtype must be a string such as 'int8' or 'fp32'; got {dtype!r}")
    return dtype.split()[0].strip().lower()


def _widest(doc: dict | str, why: str) -> dict:
    if isinstance(doc, str):
        lo, hi = NO_FILE_BAND
        return {
            "ratio_low": lo,
            "ratio_high": hi,
            "n": 0,
            "source": "chosen fallback (no bands file)",
            "note": f"{why}; and the bands file is unusable ({doc}): a chosen 0.1-10x range, not measured",
        }
    w = doc["widest"]
    return {
        **{k: w[k] for k in BAND_KEYS},
        "note": f"{why}: the widest band measured ({w['note']})",
    }


def band_for(
    core: str,
    stack: str,
    op_mix: str,
    dtype: str,
    transferred: bool,
    *,
    estimator: str = DEFAULT_ESTIMATOR,
    path: Path | None = None,
    doc: dict | None = None,
) -> dict:
    """{ratio_low, ratio_high, n, source, note} for one latency record; never None (see module doc).

    ``core``: the board's emulated core (catalog ``emulation.core``, e.g. 'cortex-m4f');
    ``doc``: a bands document in hand (the benchmark's, before it is written) instead of the file;
    ``estimator``: which estimate the band is for ('mcu-stack-v2': devices/stacks.py, against
    published latencies; 'zoo-cycles-v2': devices/zoo_fit.py, against emulated cycles)."""
    if op_mix not in (*OP_MIXES, ANY):
        raise UserError(
            f"band_for: op_mix {op_mix!r} is not one of {', '.join(OP_MIXES)}; compute it with "
            "devices.estimator_bands.op_mix(work_by_kind)"
        )
    dt, tr = _dtype(dtype), bool(transferred)
    doc = document(path) if doc is None else (check_document(doc) or doc)
    cls = (
        f"{estimator} on stack {stack}, {dt}, "
        f"{'transferred board' if tr else 'board with its own runs'}"
    )
    if isinstance(doc, str):
        return _widest(doc, f"no band data for {cls}")
    if dt not in DTYPES:
        return _widest(doc, f"no band for dtype {dt!r} (bands exist for {', '.join(DTYPES)})")
    if estimator not in ESTIMATORS:
        raise UserError(f"band_for: estimator {estimator!r} is not one of {', '.join(ESTIMATORS)}")
    same = [
        b
        for b in doc["bands"]
        if b["estimator"] == estimator
        and b["stack"] == stack
        and b["dtype"] == dt
        and bool(b["transferred"]) == tr
    ]
    order = (
        (core, op_mix, ""),
        (core, ANY, f"no {op_mix} band on {core}: pooled over op mixes on this core"),
        (ANY, op_mix, f"no {cls} band on {core}: pooled over cores for {op_mix}"),
        (ANY, ANY, f"no {cls} band on {core} for {op_mix}: pooled over cores and op mixes"),
    )
    thin = ""
    for c, m, how in order:
        hit = next((b for b in same if b["core"] == c and b["op_mix"] == m), None)
        if hit is not None and hit["n"] < MIN_N:
            thin = f"{c}/{m} has {hit['n']} held-out case(s), under {MIN_N}: pooled further; "
            continue
        if hit is not None:
            out = {k: hit[k] for k in BAND_KEYS}
            if how or thin:
                out["note"] = f"{thin}{how}{'; ' if how else ''}{hit['note']}"
            return out
    return _widest(doc, f"no held-out data for {cls} (never borrowed from another class)")


def edges(value: float, band: dict) -> tuple[float, float]:
    """(low, high) truth range for an estimate ``value`` under ``band``."""
    return value * band["ratio_low"], value * band["ratio_high"]
