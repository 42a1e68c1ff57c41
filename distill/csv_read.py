"""Reading a user's CSV as text: its encoding, delimiter and decimal mark, each named or refused.

A file written by a spreadsheet in another locale is the common case: Latin-1 / Windows-1252
bytes, ``;`` between fields and ``,`` as the decimal mark. The delimiter is read from the
header line (``data.delimiter: auto``); the encoding and the decimal mark are never guessed
(a wrong guess misreads numbers silently), so a file that does not fit them fails with the
line, the bytes and the recipe key that fixes it. What was used is recorded in the card and in
ship/preprocess.json, so the shipped examples read the user's next file the same way.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ground.errors import UserError

DELIMITERS = (",", ";", "\t", "|")
_COMMA_NUMBER = re.compile(r"^[+-]?\d+,\d+$")


@dataclass(frozen=True)
class Dialect:
    """How the file's text is read: the same settings read the user's later files."""

    encoding: str
    delimiter: str
    decimal: str

    def record(self) -> dict[str, str]:
        return {"encoding": self.encoding, "delimiter": self.delimiter, "decimal": self.decimal}


def codec_name(encoding: str) -> str:
    """Python's own name of an encoding (``UTF8`` -> ``utf-8``, ``latin-1`` -> ``iso8859-1``)."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(
            f"recipe key 'data.encoding' is {encoding!r}, not an encoding Python knows; "
            "use e.g. utf-8, latin-1 or cp1252."
        ) from None


def _decode(p: Path, encoding: str) -> str:
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 4]
        suggestion = "cp1252" if any(0x80 <= b <= 0x9F for b in raw) else "latin-1"
        raise UserError(
            f"'{p}' line {line} is not valid {encoding} text (bytes {bad!r} at byte {exc.start}). "
            f"The file was probably saved as Latin-1 / Windows-1252: set data.encoding: "
            f"{suggestion} in the recipe, or save the file as UTF-8."
        ) from None


def _delimiter(text: str, wanted: str, p: Path) -> str:
    """``auto``: the candidate that splits the header line into the most fields."""
    if wanted != "auto":
        if len(wanted) != 1:
            raise UserError(
                f"recipe key 'data.delimiter' is {wanted!r}; it must be one character "
                f"(e.g. ',' or ';') or auto."
            )
        return wanted
    header = next((ln for ln in text.splitlines() if ln.strip()), "")
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(p: Path, cfg: dict) -> tuple[list[str], list[list[str]], Dialect]:
    """The header and the data rows (fields stripped, blank lines dropped) of one CSV."""
    encoding = codec_name(cfg.get("encoding") or "utf-8")
    text = _decode(p, encoding)
    dialect = Dialect(
        encoding,
        _delimiter(text, cfg.get("delimiter") or "auto", p),
        cfg.get("decimal") or ".",
    )
    if dialect.decimal == dialect.delimiter:
        raise UserError(
            f"recipe keys 'data.decimal' and 'data.delimiter' are both {dialect.decimal!r} for "
            f"'{p}'; a file with decimal commas separates its fields with ';' (data.delimiter: ';')."
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter)
    rows = [r for r in reader if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise UserError(
            f"'{p}' needs a header row and at least one data row; it has {len(rows)} rows."
        )
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise UserError(
                f"'{p}' line {i} has {len(r)} fields; the header has {len(header)}. Fields "
                f"are split at {dialect.delimiter!r} "
                "(data.delimiter); quote a field that contains it."
            )
    return header, [[c.strip() for c in r] for r in rows[1:]], dialect


def number(v: str, decimal: str) -> float:
    """A field as a float, with the file's decimal mark (ValueError when it is not a number)."""
    return float(v.replace(",", ".") if decimal == "," else v)


def decimal_comma_hint(p: Path, name: str, values: list[str], dialect: Dialect) -> None:
    """Refuse to read numbers written with decimal commas as categories: name data.decimal."""
    if dialect.decimal == "," or not values:
        return
    if all(_COMMA_NUMBER.match(v) or _is_float(v) for v in values) and any(
        _COMMA_NUMBER.match(v) for v in values
    ):
        example = next(v for v in values if _COMMA_NUMBER.match(v))
        raise UserError(
            f"'{p}' column '{name}' holds numbers written with a decimal comma ({example!r}). "
            "Set data.decimal: ',' in the recipe (fields are then split at "
            f"{dialect.delimiter!r}), or list '{name}' in data.categorical if it is a category."
        )


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True
