"""Reading annotation CSVs (``CSVDataset`` lists, 11k Hands' ``HandInfo.csv``) with every
fault as one DataError naming the file and the line: missing, not UTF-8, a required column
absent, a row cut short."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence

from promptsg.errors import DataError


def decode_text(path: str) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark dropped).

    Raises:
        DataError: the file is missing or not UTF-8 (naming the line of the first bad byte).
    """
    if not os.path.isfile(path):
        raise DataError(f'annotation file not found: {path}')
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b'\n') + 1
        raise DataError(
            f'{path} line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text; save the file '
            'as UTF-8 (e.g. iconv -f latin1 -t utf-8)'
        ) from None


def read_csv_rows(path: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a CSV, values stripped of whitespace.

    Raises:
        DataError: see :func:`decode_text`; a ``required`` column is missing; a row has fewer
            fields than the header (a file cut mid-row).
    """
    reader = csv.DictReader(io.StringIO(decode_text(path), newline=''))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f'{path} lacks column(s) {", ".join(missing)}')
    reader.fieldnames = columns
    rows = []
    for row in reader:
        line = reader.line_num
        short = [k for k in columns if row.get(k) is None]
        if short:
            raise DataError(
                f'{path} line {line}: {len(columns) - len(short)} of {len(columns)} fields, '
                f'no {", ".join(short[:3])} (a row cut short?)'
            )
        rows.append((line, {k: (v or '').strip() for k, v in row.items() if k is not None}))
    return rows
