"""The report's provenance: the run's metadata table and where each device's efficiencies come from."""

from __future__ import annotations

from .report_cells import pct


def metadata(doc: dict, card: dict, exports: dict) -> list[tuple[str, str]]:
    lin = card.get("lineage") or {}
    teacher, student = card.get("teacher") or {}, card.get("student") or {}
    h = (card.get("metrics") or {}).get("holdout") or {}
    versions = lin.get("versions") or {}
    runtimes = sorted({a.get("runtime") for a in exports.get("artifacts", []) if a.get("runtime")})
    return [
        ("run", str(doc.get("run"))),
        ("profiled", str(doc.get("created", "-"))),
        ("student trained", str(lin.get("created", "-"))),
        ("commit", str(lin.get("commit") or doc.get("commit") or _commit())),
        ("recipe", str(lin.get("recipe_path", "-"))),
        ("command", str(lin.get("command", "-"))),
        ("holdout rows", str(h.get("n", "-"))),
        (
            "teacher accuracy",
            f"{pct((h.get('teacher') or {}).get('accuracy'))} ({len(teacher.get('members', []))} members, "
            f"{teacher.get('combine', '?')} mean)",
        ),
        (
            "student accuracy",
            f"{pct((h.get('student') or {}).get('accuracy'))} ({student.get('arch')}, "
            f"{student.get('params') or 0:,} params, {student.get('macs') or 0:,} MACs)",
        ),
        (
            "baseline accuracy",
            f"{pct((h.get('baseline') or {}).get('accuracy'))} (same student on hard labels only)",
        ),
        (
            "measurement",
            ", ".join(f"{k}={doc['settings'].get(k)}" for k in ("threads", "runs", "warmup")),
        ),
        ("tool versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "-"),
        ("runtimes that checked the files", "; ".join(runtimes) or "-"),
    ]


def _commit() -> str:
    """The git commit of the code writing this report (card.json and profile.json record none)."""
    from ground.provenance import code_commit

    sha = code_commit()
    return f"{sha} (code that wrote this report)" if sha else "not recorded"


def efficiency_sources(doc: dict) -> dict[str, str]:
    """Device -> where its estimated latency's efficiencies come from (first estimated record wins)."""
    sources: dict[str, str] = {}
    for r in doc["records"]:
        if r["method"] == "estimated" and (r.get("latency") or {}).get("efficiency"):
            sources.setdefault(r["device"], r["latency"]["efficiency"])
    return sources
