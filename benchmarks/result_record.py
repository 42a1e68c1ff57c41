"""A paper benchmark's result file, JSON first: the markdown is rendered from the JSON as read
back from disk, so every line of it, verdicts included, comes from the file that is committed.

Why: in round 2 bucilua_munge wrote its markdown, then failed to write its JSON (a NaN share),
and the per-seed figures behind the tables were lost. Here the JSON is written strictly (NaN and
infinities refused), read back and compared, and only then is the markdown rendered and written;
any failure raises, so the run exits non-zero instead of leaving a table without its data.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import common
from ground import rundir
from ground.errors import UserError
from ground.provenance import code_commit

Render = Callable[[dict], str]


def new_record(name: str, command: str, settings: dict, started: float) -> dict[str, Any]:
    """The provenance every result file carries: benchmark, command, commit, machine, start time
    (perf_counter, dropped on write) and settings; ``results`` is filled by the run."""
    return {
        "benchmark": name,
        "command": command,
        "commit": code_commit(),
        "machine": common.machine(),
        "settings": settings,
        "_started": started,
        "results": {},
    }


def finished(rec: dict) -> dict:
    """The record as written: wall time and date stamped, the start time dropped."""
    out = {k: v for k, v in rec.items() if k != "_started"}
    out["wall_s"] = round(time.perf_counter() - rec["_started"], 1)
    out["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return out


def write(rec: dict, out_dir: Path, render: Render) -> tuple[Path, Path]:
    """JSON (strict, read back and compared), then the markdown rendered from what was read."""
    out_dir = Path(out_dir)
    final = finished(rec)
    js = out_dir / f"{final['benchmark']}.json"
    rundir.atomic_write_json(js, final)  # allow_nan=False: a NaN fails here, before any markdown
    loaded = json.loads(js.read_text())
    if loaded != json.loads(json.dumps(final)):
        raise RuntimeError(f"{js} does not read back as written")
    md_text = render(loaded)
    md = out_dir / f"{final['benchmark']}.md"
    rundir.atomic_write_bytes(md, md_text.encode())
    if md.read_text() != md_text:
        raise RuntimeError(f"{md} does not read back as written")
    print(md_text)
    return js, md


def provenance(rec: dict) -> str:
    """The lines that say where every figure below comes from."""
    m = rec["machine"]
    return (
        f"- command: `{rec['command']}`\n"
        f"- commit: {rec.get('commit') or 'not recorded (no git checkout)'}\n"
        f"- machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} "
        f"threads), Python {m['python']}\n"
        f"- finished: {rec['created']}; wall time {rec['wall_s']:.0f} s "
        f"({rec['wall_s'] / 60:.1f} min)\n"
    )


def stamp(rec: dict, seeds: list[int]) -> str:
    """The line under a table, so that a table copied alone keeps its source."""
    m = rec["machine"]
    return (
        f"\n<sub>command `{rec['command']}`; commit {rec.get('commit') or 'not recorded'}; "
        f"{m['cpu']}, {m['cores']} cores; {rec['created']}; seeds "
        f"{', '.join(map(str, seeds))}</sub>\n"
    )


def rerender(name: str, module: str, render: Render, argv: list[str] | None) -> int:
    """``python -m benchmarks.<module> [FILE.json]``: the markdown again from a result file."""
    ap = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}",
        description=f"Render {name}.md from {name}.json (the markdown is a function of the JSON).",
    )
    ap.add_argument("json", type=Path, nargs="?", default=common.RESULTS / f"{name}.json")
    args = ap.parse_args(argv)
    if not args.json.is_file():
        raise UserError(
            f"result file '{args.json}' does not exist; run `python -m benchmarks.{name}` first "
            "or pass the path of its JSON."
        )
    rec = json.loads(args.json.read_text())
    if rec.get("benchmark") != name:
        raise UserError(
            f"'{args.json}' is a result of {rec.get('benchmark')!r}, not {name!r}; pass {name}.json."
        )
    text = render(rec)
    rundir.atomic_write_bytes(args.json.with_suffix(".md"), text.encode())
    print(text)
    return 0
