"""Parsing the text of a MATPOWER ``.m`` case file (format version 2) into its fields: matrices as
float arrays, cell arrays as lists of strings, scalars (world/io_matpower.py converts them)."""
from __future__ import annotations

import math
import re

import numpy as np

from gridtape.errors import CaseError


def parse_matpower(text: str, *, file=None) -> dict:
    """The fields of a MATPOWER case: ``{"version": str, "baseMVA": float, "bus": 2-D array, ...,
    "bus_name": [str, ...]}``.  Matrices become float arrays, cell arrays lists of strings."""
    text = _strip_comments(text)
    m = re.search(r"\bfunction\s+(?:\[?\s*(\w+)\s*\]?\s*=\s*)?\w+", text)
    var = m.group(1) if m and m.group(1) else "mpc"
    out = {}
    for am in re.finditer(rf"\b{re.escape(var)}\s*\.\s*(\w+)\s*=\s*", text):
        field = am.group(1)
        pos = am.end()
        if pos >= len(text):
            continue
        c = text[pos]
        if c in "[{":
            close = "]" if c == "[" else "}"
            end = text.find(close, pos + 1)
            if end < 0:
                raise CaseError(f"{var}.{field}: no closing {close!r}", file=file, table=field)
            body = text[pos + 1:end]
            out[field] = _parse_matrix(body, field, file) if c == "[" else _parse_cell(body)
        else:
            end = _statement_end(text, pos)
            out[field] = _parse_scalar(text[pos:end].strip())
    return out


def _strip_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if "%" in line:
            in_str = False
            for i, ch in enumerate(line):
                if ch == "'":
                    # a quote starts a string unless it follows a value (transpose operator)
                    prev = line[:i].rstrip()[-1:] if not in_str else ""
                    if in_str or not (prev and (prev.isalnum() or prev in ")]}_.'")):
                        in_str = not in_str
                elif ch == "%" and not in_str:
                    line = line[:i]
                    break
        lines.append(line.replace("...", " "))
    return "\n".join(lines)


def _statement_end(text, pos):
    i = pos
    in_str = False
    while i < len(text):
        ch = text[i]
        if ch == "'":
            in_str = not in_str
        elif not in_str and ch in ";\n":
            return i
        i += 1
    return i


def _parse_scalar(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    try:
        return _num(s)
    except ValueError:
        return s


_NUMS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+nan": math.nan,
         "-nan": math.nan}


def _num(tok: str) -> float:
    v = _NUMS.get(tok.lower())
    if v is not None:
        return v
    return float(tok)


def _parse_matrix(body: str, field, file) -> np.ndarray:
    rows = []
    for line_no, chunk in enumerate(re.split(r"[;\n]", body)):
        toks = [t for t in re.split(r"[\s,]+", chunk.strip()) if t]
        if not toks:
            continue
        try:
            rows.append([_num(t) for t in toks])
        except ValueError as e:
            raise CaseError(f"mpc.{field}: not a number in row {len(rows) + 1}: {e}", file=file, table=field,
                            row=len(rows) + 1) from None
    if not rows:
        return np.zeros((0, 0))
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise CaseError(f"mpc.{field}: row {i + 1} has {len(r)} columns, row 1 has {width}", file=file,
                            table=field, row=i + 1)
    return np.array(rows, dtype=float)


def _parse_cell(body: str) -> list:
    out = []
    for m in re.finditer(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"|([^\s,;'\"]+)", body):
        if m.group(1) is not None:
            out.append(m.group(1).replace("''", "'"))
        elif m.group(2) is not None:
            out.append(m.group(2).replace('""', '"'))
        else:
            out.append(m.group(3))
    return out


