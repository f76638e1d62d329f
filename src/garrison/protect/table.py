"""Reading and writing the tables that anonymisation works on (CSV and Parquet), strictly and atomically.

A CSV must be rectangular and in the stated encoding (UTF-8 by default): a ragged row or an undecodable byte is a
:class:`DataError` naming the file and line, never a silently shifted or dropped row. Outputs go to a temporary file
beside the target and are renamed over it only when complete.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd

from garrison.core.atomic_write import atomic_output
from garrison.core.errors import DataError

__all__ = ["TABLE_FORMATS", "read_table", "table_format", "write_table"]

TABLE_FORMATS = ("csv", "parquet")


def table_format(path: str | Path, given: str | None = None) -> str:
    """``csv`` or ``parquet``: ``given`` when set, else Parquet's magic bytes or the extension, else CSV."""
    if given is not None:
        if given not in TABLE_FORMATS:
            raise ValueError(f"`format` must be one of {', '.join(TABLE_FORMATS)}, got {given!r}")
        return given
    p = Path(path)
    try:
        with p.open("rb") as fh:
            if fh.read(4) == b"PAR1":
                return "parquet"
    except OSError:
        pass
    return "parquet" if p.suffix.lower() in (".parquet", ".pq") else "csv"


def _locate_csv_problem(raw: bytes, encoding: str, path: Path) -> DataError:
    """Find the first line that is undecodable or has the wrong number of fields."""
    try:
        text = codecs.decode(raw, encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return DataError(f"line {line}: not valid {encoding} text (byte offset {exc.start})", path=path)
    except LookupError:
        return DataError(f"unknown encoding {encoding!r}", path=path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return DataError("the file is empty", path=path)
    except csv.Error as exc:
        return DataError(f"line 1: {exc}", path=path)
    width = len(header)
    try:
        for row in reader:
            if row and len(row) != width:
                return DataError(
                    f"line {reader.line_num}: {len(row)} fields where the header has {width} (ragged row)",
                    path=path,
                )
    except csv.Error as exc:
        return DataError(f"line {reader.line_num}: {exc}", path=path)
    return DataError("not a readable CSV file", path=path)


def read_table(path: str | Path, *, format: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (header row, ``encoding``) or Parquet file; any problem is a :class:`DataError` naming the file
    (and, for CSV, the line)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    fmt = table_format(p, format)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", path=p) from None
    if fmt == "parquet":
        try:
            return pq.read_table(p).to_pandas()
        except FileNotFoundError:
            raise DataError("cannot read file: no such file", path=p) from None
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise DataError(f"not a readable Parquet file ({exc.__class__.__name__})", path=p) from None
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", path=p) from None
    if not raw.strip():
        raise DataError("the file is empty", path=p)
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        # pyarrow checks UTF-8 only in string columns; check every byte (also those of numbers and the header)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _locate_csv_problem(raw, encoding, p) from None
    header = _header(raw, encoding)
    if len(set(header)) != len(header):
        raise DataError("duplicate column names in the header", path=p)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            # every column as text: type inference would turn the postcode 01234 into the number 1234
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.large_string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError, ValueError, LookupError):
        raise _locate_csv_problem(raw, encoding, p) from None
    return _with_numbers(table)


_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$"  # no leading zeros, no "+": those are codes, not numbers


def _header(raw: bytes, encoding: str) -> list[str]:
    head = codecs.decode(raw[: 1 << 16], encoding, errors="replace")
    try:
        return next(csv.reader(io.StringIO(head, newline="")))
    except (StopIteration, csv.Error):
        return []


def _with_numbers(table: object) -> pd.DataFrame:
    """Columns whose every non-empty value is a plain number become numbers; the others stay text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    assert isinstance(table, pa.Table)
    columns = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        filled = pc.not_equal(col, "")
        n_filled = pc.sum(filled).as_py() or 0
        if n_filled and pc.sum(pc.match_substring_regex(col, _NUMBER)).as_py() == n_filled:
            as_null = pc.if_else(filled, col, pa.scalar(None, pa.large_string()))
            columns[name] = pc.cast(as_null, pa.float64()).to_pandas()
            if columns[name].dropna().apply(float.is_integer).all() and n_filled == len(col):
                columns[name] = columns[name].astype("int64")
        else:
            columns[name] = col.to_pandas()
    return pd.DataFrame(columns)


def write_table(frame: pd.DataFrame, path: str | Path, *, format: str | None = None) -> Path:
    """Write ``frame`` as CSV (UTF-8, header, no index) or Parquet to a temporary file beside ``path``, fsync it and
    rename it over ``path``: readers never see a partial table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    fmt = format if format is not None else ("parquet" if p.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(TABLE_FORMATS)}, got {fmt!r}")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"cannot write the table: {exc.__class__.__name__}", path=p) from None
    with atomic_output(p, mode=0o644) as fh:
        if fmt == "parquet":
            pq.write_table(table, fh)
        else:
            pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return p
