"""``data.name: csv``: a CSV with a header row, one label column, numeric and categorical columns.

Categorical columns (``data.categorical``, or ``auto``: every column with a non-numeric
value) are label-encoded in sorted order of the training file's values: nominal attributes
for MUNGE, one-hot inputs inside the student. String labels map to class indices in sorted
order; their names become the labels. A missing value (empty, ``?``, ``NA``, ``NaN``,
``null``) is an error naming the line and column unless ``data.impute`` says what to do.
``test_path``: a separate test CSV with the same header = the holdout. Listed in
``distill.data_registry`` (with its recipe keys) by dotted path, imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.errors import UserError

from .data_files import resolve_path
from .dataset import Dataset
from .splits import from_splits

MISSING = ("", "?", "na", "n/a", "nan", "null", "none")
Rows = list[list[str]]


def _missing(v: str) -> bool:
    return v.lower() in MISSING


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _read_csv(p: Path) -> tuple[list[str], Rows]:
    import csv

    with open(p, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise UserError(
            f"'{p}' needs a header row and at least one data row; it has {len(rows)} rows."
        )
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise UserError(
                f"'{p}' line {i} has {len(r)} fields; the header has {len(header)} ({header[:8]}...)."
            )
    return header, [[c.strip() for c in r] for r in rows[1:]]


def _files(cfg: dict) -> tuple[list[str], dict[str, tuple[Path, Rows]]]:
    """The header and the rows of the training file and, when given, the test file."""
    if not cfg["path"] or not cfg["label"]:
        raise UserError(
            "recipe keys 'data.path' and 'data.label' are required for data.name: csv "
            "(a CSV file with a header row, and the name of its label column)."
        )
    p = resolve_path(cfg["path"], "data.path")
    header, rows = _read_csv(p)
    files = {"train": (p, rows)}
    if cfg["test_path"]:
        pt = resolve_path(cfg["test_path"], "data.test_path")
        header_t, rows_t = _read_csv(pt)
        if header_t != header:
            raise UserError(
                f"'{pt}' has columns {header_t}; data.path '{p}' has {header}. The test CSV needs the same header."
            )
        files["test"] = (pt, rows_t)
    if cfg["label"] not in header:
        raise UserError(
            f"recipe key 'data.label' is {cfg['label']!r}, not a column of '{p}'; columns: {header}."
        )
    return header, files


def _categorical(cat, names: list[str], columns: list[list[str]], p: Path) -> set[str]:
    """The categorical feature columns: the recipe's list, or every column with a non-number."""
    if cat == "auto":
        return {
            n
            for n, col in zip(names, columns)
            if any(not _is_number(v) and not _missing(v) for v in col)
        }
    if isinstance(cat, list) and all(isinstance(c, str) for c in cat):
        unknown = [c for c in cat if c not in names]
        if unknown:
            raise UserError(
                f"recipe key 'data.categorical' names {unknown}, not feature columns of '{p}'; "
                f"columns: {names}."
            )
        return set(cat)
    raise UserError(
        f"recipe key 'data.categorical' must be 'auto' or a list of column names; got {cat!r}."
    )


def _not_a_number(path: Path, line: int, col: str, v: str) -> UserError:
    return UserError(
        f"'{path}' line {line}, column '{col}': {v!r} is not a number. "
        f"Add '{col}' to data.categorical (or use categorical: auto)."
    )


@dataclass
class _Columns:
    """How each feature column becomes a number: learned from the training file only."""

    index: list[int]  # the feature columns' positions in a row
    names: list[str]
    nominal: np.ndarray  # bool per feature
    impute: str | None
    categories: dict[int, list[str]] = field(default_factory=dict)  # nominal: code order
    fill: dict[int, float] = field(default_factory=dict)  # what a missing value becomes

    def fit(self, path: Path, rows: Rows) -> _Columns:
        for k, j in enumerate(self.index):
            col = [r[j] for r in rows]
            present = [v for v in col if not _missing(v)]
            if self.nominal[k]:
                vocab = sorted(set(present))
                self.categories[k] = vocab
                code = {v: i for i, v in enumerate(vocab)}
                counts = np.bincount([code[v] for v in present], minlength=len(vocab))
                self.fill[k] = float(np.argmax(counts)) if len(present) else 0.0
                continue
            bad = next(
                (i for i, v in enumerate(col) if not _missing(v) and not _is_number(v)), None
            )
            if bad is not None:
                raise _not_a_number(path, bad + 2, self.names[k], col[bad])
            vals = np.array([float(v) for v in present], np.float64)
            if self.impute == "most_frequent" and len(vals):
                u, c = np.unique(vals, return_counts=True)
                self.fill[k] = float(u[np.argmax(c)])
            else:
                self.fill[k] = float(np.median(vals)) if len(vals) else 0.0
        return self

    def _value(self, path: Path, line: int, k: int, v: str, code: dict[str, int]) -> float:
        if _missing(v):
            if self.impute is None:
                raise UserError(
                    f"'{path}' line {line}, column '{self.names[k]}': missing value. Fill it in, or "
                    "set data.impute: median (numeric: training median; categorical: most frequent "
                    "value) or most_frequent."
                )
            return self.fill[k]
        if not self.nominal[k]:
            try:
                return float(v)
            except ValueError:
                raise _not_a_number(path, line, self.names[k], v) from None
        if v in code:
            return code[v]
        if self.impute is None:
            raise UserError(
                f"'{path}' line {line}, column '{self.names[k]}': category {v!r} does not occur in "
                f"the training file ({self.categories[k][:10]}). Add such rows to the training "
                "file, or set data.impute to map it to the most frequent value."
            )
        return self.fill[k]

    def encode(self, path: Path, rows: Rows) -> np.ndarray:
        out = np.zeros((len(rows), len(self.index)), np.float32)
        for k, j in enumerate(self.index):
            code = {v: i for i, v in enumerate(self.categories.get(k, []))}
            for i, r in enumerate(rows):
                out[i, k] = self._value(path, i + 2, k, r[j], code)
        return out


def _labels(
    files: dict[str, tuple[Path, Rows]], li: int, label: str
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Label names (sorted; numerically when every label is a number) and indices per file."""
    ys = {s: [r[li] for r in rws] for s, (_, rws) in files.items()}
    for s, (path, _) in files.items():
        gap = next((i for i, v in enumerate(ys[s]) if _missing(v)), None)
        if gap is not None:
            raise UserError(
                f"'{path}' line {gap + 2}: the label column '{label}' is empty; every row needs a label."
            )
    seen = set(ys["train"])
    labels = sorted(seen, key=float) if all(_is_number(v) for v in seen) else sorted(seen)
    unseen = sorted(set(ys.get("test", [])) - seen)
    if unseen:
        raise UserError(
            f"'{files['test'][0]}' has labels {unseen[:10]} that the training file does not; "
            f"the training labels are {labels[:20]}."
        )
    index = {v: i for i, v in enumerate(labels)}
    return labels, {s: np.array([index[v] for v in y], np.int64) for s, y in ys.items()}


def load_csv(cfg: dict) -> Dataset:
    header, files = _files(cfg)
    p, rows = files["train"]
    li = header.index(cfg["label"])
    feats = [j for j in range(len(header)) if j != li]
    names = [header[j] for j in feats]
    catset = _categorical(cfg["categorical"], names, [[r[j] for r in rows] for j in feats], p)
    cols = _Columns(feats, names, np.array([n in catset for n in names]), cfg["impute"])
    cols.fit(p, rows)
    x = {s: cols.encode(path, rws) for s, (path, rws) in files.items()}
    labels, y = _labels(files, li, cfg["label"])
    source = {
        "path": str(p),
        "test_path": str(files["test"][0]) if "test" in files else None,
        "label": cfg["label"],
        "categorical": sorted(catset),
        "impute": cfg["impute"],
    }
    return from_splits(
        p.stem,
        {s: (x[s], y[s]) for s in files},
        labels,
        cols.nominal,
        None,
        cfg,
        source,
        columns=names,
        categories=cols.categories,
    )
