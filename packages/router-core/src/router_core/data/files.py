"""Reading raw rows from local battle files (JSONL / JSON / CSV / TSV / parquet, optionally gzipped).

A damaged *file* (a truncated or fake gzip, unreadable parquet, a JSON array that does not parse) is a
`DataError` naming it. A damaged *row* (a JSONL line that is not a JSON object, not UTF-8 or nested too deeply;
a CSV record with the wrong number of fields or undecodable bytes) becomes a placeholder `{BAD_ROW: reason}`
that the parser counts and skips, so one bad row never makes the rest of a file unreadable.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from router_core.errors import DataError

BAD_ROW = "__bad_row__"
"""Key of the placeholder row yielded for a row that cannot be read (the parser then skips and counts it)."""

_BOM = codecs.BOM_UTF8
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by errors="surrogateescape"
_DAMAGED = (OSError, EOFError, zlib.error, csv.Error)


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes if s.lower() != ".gz"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of one file as dicts; columns are read as they are stored (strings for CSV)."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    kind = (_suffixes(path) or [""])[-1]
    try:
        if kind in (".jsonl", ".json", ".ndjson"):
            return list(_json_rows(path))
        if kind in (".csv", ".tsv"):
            return _csv_rows(path, "\t" if kind == ".tsv" else ",")
        if kind == ".parquet":
            return _parquet_rows(path)
    except DataError:
        raise
    except _DAMAGED as error:
        what = "a damaged or truncated gzip file" if path.suffix.lower() == ".gz" else "unreadable"
        raise DataError(f"{path}: {what} ({type(error).__name__}: {str(error)[:160]})") from None
    raise DataError(f"{path}: unsupported file type (expected .jsonl, .json, .csv, .tsv or .parquet)")


def _open(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile is a binary file object
    return path.open("rb")


def bad_row(reason: str) -> dict[str, Any]:
    """The placeholder for a row that cannot be read."""
    return {BAD_ROW: reason}


def json_object(line: bytes | str, where: str) -> dict[str, Any]:
    """One JSON object from one line, or a `bad_row` placeholder saying what is wrong with it."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        return bad_row(f"{where}: not valid UTF-8")
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        return bad_row(f"{where}: invalid JSON ({error.msg})")
    except RecursionError:
        return bad_row(f"{where}: JSON nested too deeply")
    return row if isinstance(row, dict) else bad_row(f"{where}: not a JSON object")


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        number, line = 1, handle.readline().removeprefix(_BOM)
        while line and not line.strip():
            number, line = number + 1, handle.readline()
        if line.lstrip().startswith(b"["):  # one JSON array instead of JSON Lines: a damaged array is a damaged file
            yield from _json_array(path, line + handle.read())
            return
        while line:
            if line.strip():
                yield json_object(line, f"line {number}")
            number, line = number + 1, handle.readline()


def _json_array(path: Path, data: bytes) -> Iterator[dict[str, Any]]:
    try:
        items = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not a valid JSON array (line {error.lineno}, column {error.colno}: {error.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    for number, item in enumerate(items, start=1):
        yield item if isinstance(item, dict) else bad_row(f"item {number}: not a JSON object")


def _csv_rows(path: Path, delimiter: str) -> list[dict[str, Any]]:
    """CSV records by Python's csv module: a record with the wrong number of fields is one bad row, not a bad file."""
    csv.field_size_limit(2**31 - 1)  # the 140k file keeps whole conversations in one field
    try:
        return _csv_records(path, delimiter, "strict")
    except UnicodeDecodeError:  # rare: read again, keeping undecodable bytes visible so their rows are skipped
        return _csv_records(path, delimiter, "surrogateescape")


def _csv_records(path: Path, delimiter: str, errors: str) -> list[dict[str, Any]]:
    with io.TextIOWrapper(_open(path), encoding="utf-8-sig", errors=errors, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return []
        if _UNDECODABLE.search("".join(header)):
            raise DataError(f"{path}: the header line is not UTF-8 text")
        return list(_csv_dicts(reader, header))


def _csv_dicts(reader: Any, header: list[str]) -> Iterable[dict[str, Any]]:
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield bad_row(f"line {reader.line_num}: {error}")
            continue
        if not record:
            continue
        if len(record) != len(header):
            yield bad_row(f"line {reader.line_num}: {len(record)} fields where the header has {len(header)}")
        elif any(_UNDECODABLE.search(field) for field in record):
            yield bad_row(f"line {reader.line_num}: not valid UTF-8")
        else:
            yield dict(zip(header, record, strict=True))


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pandas as pd  # only parquet needs pandas; JSONL and CSV stay fast to start

    try:
        return pd.read_parquet(path).to_dict("records")
    except Exception as error:  # noqa: BLE001 - pyarrow raises many types; every one means "this file is damaged"
        raise DataError(f"{path}: cannot be read as parquet ({type(error).__name__}: {str(error)[:160]})") from None


def columns_of(rows: list[dict[str, Any]]) -> set[str]:
    """Union of the keys of the first 50 well-formed rows."""
    cols: set[str] = set()
    for row in [r for r in rows if BAD_ROW not in r][:50]:
        cols |= set(row)
    return cols
