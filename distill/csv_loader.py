"""``data.name: csv``: a CSV with a header row, one label column, numeric and categorical columns.

Categorical columns (``data.categorical``, or ``auto``: every column with a non-numeric
value) are label-encoded in sorted order of the training file's values: nominal attributes
for MUNGE, one-hot inputs inside the student. String labels map to class indices in sorted
order; their names become the labels. A missing value (empty, ``?``, ``NA``, ``NaN``,
``null``) is filled as ``data.impute`` says (default ``median``: a numeric column's training
median, a categorical column's most frequent training value; ``error`` refuses it, naming the
line and column). A category the training file never has is handled as ``data.unseen`` says
(default ``most_frequent``; ``unknown``: code -1, which one-hots to zeros in the student;
``error``). The fill values, the code maps and the policies are the preprocessing contract
(``Dataset.preprocess``, shipped as ship/preprocess.json); the holdout's filled and unseen
values are counted there. ``test_path``: a separate test CSV with the same header = the
holdout. Listed in ``distill.data_registry`` (with its recipe keys) by dotted path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.errors import UserError

from .csv_read import Dialect, decimal_comma_hint, number, read_rows
from .data_files import resolve_path
from .dataset import Dataset
from .splits import from_splits

MISSING = ("", "?", "na", "n/a", "nan", "null", "none")
UNKNOWN_CODE = -1.0  # data.unseen: unknown; outside 0..K-1, so the student's one-hot is all zeros
Rows = list[list[str]]


def _missing(v: str) -> bool:
    return v.lower() in MISSING


def _is_number(v: str, decimal: str = ".") -> bool:
    try:
        number(v, decimal)
    except ValueError:
        return False
    return True


def _files(cfg: dict) -> tuple[list[str], dict[str, tuple[Path, Rows]], Dialect]:
    """The header and the rows of the training file and, when given, the test file."""
    if not cfg["path"] or not cfg["label"]:
        raise UserError(
            "recipe keys 'data.path' and 'data.label' are required for data.name: csv "
            "(a CSV file with a header row, and the name of its label column)."
        )
    p = resolve_path(cfg["path"], "data.path")
    header, rows, dialect = read_rows(p, cfg)
    files = {"train": (p, rows)}
    if cfg["test_path"]:
        pt = resolve_path(cfg["test_path"], "data.test_path")
        header_t, rows_t, _ = read_rows(pt, {**cfg, "delimiter": dialect.delimiter})
        if header_t != header:
            raise UserError(
                f"'{pt}' has columns {header_t}; data.path '{p}' has {header}. The test CSV needs the same header."
            )
        files["test"] = (pt, rows_t)
    if cfg["label"] not in header:
        raise UserError(
            f"recipe key 'data.label' is {cfg['label']!r}, not a column of '{p}'; "
            # a one-field "header" may be any file's first line: never echoed (issue 41)
            + (f"columns: {header}" if len(header) > 1 else "it has 1 column")
            + (
                f". Its fields are split at {dialect.delimiter!r}: set data.delimiter if that is wrong."
                if len(header) < 3
                else "."
            )
        )
    return header, files, dialect


def _categorical(cat, names: list[str], columns: list[list[str]], p: Path, d: Dialect) -> set[str]:
    """The categorical feature columns: the recipe's list, or every column with a non-number."""
    if cat == "auto":
        found = set()
        for n, col in zip(names, columns):
            present = [v for v in col if not _missing(v)]
            if any(not _is_number(v, d.decimal) for v in present):
                decimal_comma_hint(p, n, present, d)
                found.add(n)
        return found
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
    impute: str  # median | most_frequent | error
    unseen: str  # most_frequent | unknown | error
    decimal: str = "."
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
            bad = next((i for i, v in enumerate(col) if not _missing(v) and not self._num(v)), None)
            if bad is not None:
                raise _not_a_number(path, bad + 2, self.names[k], col[bad])
            vals = np.array([number(v, self.decimal) for v in present], np.float64)
            if self.impute == "most_frequent" and len(vals):
                u, c = np.unique(vals, return_counts=True)
                self.fill[k] = float(u[np.argmax(c)])
            else:
                self.fill[k] = float(np.median(vals)) if len(vals) else 0.0
        return self

    def _num(self, v: str) -> bool:
        return _is_number(v, self.decimal)

    def _value(self, path: Path, line: int, k: int, v: str, code: dict[str, int]) -> float:
        if _missing(v):
            if self.impute == "error":
                raise UserError(
                    f"'{path}' line {line}, column '{self.names[k]}': missing value. Fill it in, or "
                    "set data.impute: median (numeric: training median; categorical: most frequent "
                    "value) or most_frequent."
                )
            return self.fill[k]
        if not self.nominal[k]:
            try:
                return number(v, self.decimal)
            except ValueError:
                raise _not_a_number(path, line, self.names[k], v) from None
        if v in code:
            return code[v]
        if self.unseen == "error":
            raise UserError(
                f"'{path}' line {line}, column '{self.names[k]}': category {v!r} does not occur in "
                f"the training file ({self.categories[k][:10]}). Add such rows to the training "
                "file, or set data.unseen: most_frequent (the most frequent training value) or "
                "unknown (a code of its own)."
            )
        return UNKNOWN_CODE if self.unseen == "unknown" else self.fill[k]

    def encode(self, path: Path, rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows as numbers, with where a value was filled and where a category was unseen."""
        out = np.zeros((len(rows), len(self.index)), np.float32)
        filled = np.zeros(out.shape, bool)
        unseen = np.zeros(out.shape, bool)
        for k, j in enumerate(self.index):
            code = {v: i for i, v in enumerate(self.categories.get(k, []))}
            for i, r in enumerate(rows):
                v = r[j]
                out[i, k] = self._value(path, i + 2, k, v, code)
                filled[i, k] = _missing(v)
                unseen[i, k] = bool(self.nominal[k]) and not filled[i, k] and v not in code
        return out, filled, unseen

    def contract(self, dialect: Dialect) -> dict:
        """The preprocessing contract: what every shipped example does to a raw row."""
        return {
            "kind": "table",
            "columns": [
                {
                    "name": n,
                    "kind": "categorical",
                    "categories": self.categories[k],
                    "fill": self.fill[k],
                }
                if self.nominal[k]
                else {"name": n, "kind": "numeric", "fill": self.fill[k]}
                for k, n in enumerate(self.names)
            ],  # fmt: skip
            "missing_values": list(MISSING),
            "missing": self.impute,
            "unseen": self.unseen,
            "unknown_code": UNKNOWN_CODE,
            "csv": dialect.record(),
        }


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


def _holdout_rows(name: str, y: dict[str, np.ndarray], cfg: dict) -> np.ndarray:
    """Which rows of the holdout's file form the holdout, in holdout order: the same split
    code run on row numbers (deterministic in data.split_seed and the caps)."""
    flat = {s: (np.arange(len(v), dtype=np.float64)[:, None], v) for s, v in y.items()}
    ds = from_splits(name, flat, ["-"], np.zeros(1, bool), None, cfg, {})
    return ds.x_holdout[:, 0].astype(np.int64)


def _holdout_counts(cols: _Columns, masks: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> dict:
    filled, unseen = (m[rows] for m in masks)
    out = {
        "rows": int(len(rows)),
        "filled": {n: int(c) for n, c in zip(cols.names, filled.sum(0)) if c},
        "unseen": {n: int(c) for n, c in zip(cols.names, unseen.sum(0)) if c},
    }
    if out["filled"] or out["unseen"]:
        print(
            f"data: the holdout has {sum(out['filled'].values())} missing values filled "
            f"(data.impute: {cols.impute}) and {sum(out['unseen'].values())} categories the "
            f"training file lacks (data.unseen: {cols.unseen}); counts per column in card.json "
            "input.preprocess.holdout",
            file=sys.stderr,
        )
    return out


def load_csv(cfg: dict) -> Dataset:
    header, files, dialect = _files(cfg)
    p, rows = files["train"]
    li = header.index(cfg["label"])
    feats = [j for j in range(len(header)) if j != li]
    names = [header[j] for j in feats]
    catset = _categorical(
        cfg["categorical"], names, [[r[j] for r in rows] for j in feats], p, dialect
    )
    nominal = np.array([n in catset for n in names])
    cols = _Columns(feats, names, nominal, cfg["impute"], cfg["unseen"], dialect.decimal)
    cols.fit(p, rows)
    enc = {s: cols.encode(path, rws) for s, (path, rws) in files.items()}
    labels, y = _labels(files, li, cfg["label"])
    ho_file = "test" if "test" in files else "train"
    ho_rows = _holdout_rows(p.stem, y, cfg)
    contract = cols.contract(dialect)
    contract["holdout"] = _holdout_counts(cols, enc[ho_file][1:], ho_rows)
    source = {
        "path": str(p),
        "test_path": str(files["test"][0]) if "test" in files else None,
        "label": cfg["label"],
        "categorical": sorted(catset),
        "impute": cfg["impute"],
        "unseen": cfg["unseen"],
        "csv": dialect.record(),
    }
    raw = files[ho_file][1]
    return from_splits(
        p.stem,
        {s: (enc[s][0], y[s]) for s in files},
        labels,
        nominal,
        None,
        cfg,
        source,
        columns=names,
        categories=cols.categories,
        preprocess=contract,
        raw_holdout={"header": names, "rows": [[raw[i][j] for j in feats] for i in ho_rows]},
    )
