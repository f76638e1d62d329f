"""k-anonymity and l-diversity: measuring them, and reaching a target k by generalisation and suppression.

An equivalence class is the set of records sharing the same quasi-identifier values; a table is k-anonymous when
every class holds at least k records, and (distinct) l-diverse for a sensitive attribute when every class holds at
least l distinct values of it. Two ways to reach k:

- :func:`mondrian`: Mondrian multidimensional partitioning (LeFevre, DeWitt, Ramakrishnan, ICDE 2006, strict
  variant): split the records at the median of the quasi-identifier with the widest normalised range while both
  halves keep >= k records (and >= l distinct sensitive values), then publish each partition's range (numbers) or
  value set (categories). The output is k-anonymous by construction.
- :func:`generalize_to_k`: climb per-column generalisation ladders (age bands, postcode prefixes, coarser dates,
  category to ``*``) greedily until the records in classes smaller than k fit the suppression budget, then
  suppress them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from garrison.core.errors import InputError

__all__ = [
    "GENERALIZATIONS",
    "AnonymityMeasure",
    "KAnonResult",
    "class_sizes",
    "coarsen_date",
    "generalize",
    "generalize_to_k",
    "k_anonymity",
    "l_diversity",
    "measure",
    "mondrian",
    "numeric_bands",
    "truncate_postcode",
]

GENERALIZATIONS = ("numeric", "postcode", "date", "category")
"""Generalisation ladders: ``numeric`` bands of width 1 (raw), 5, 10, 20, 50, 100 then ``*``; ``postcode``
prefixes one character shorter per level (``75011`` -> ``7501*`` -> ... -> ``*``); ``date`` day -> month -> year
-> decade -> ``*``; ``category`` value -> ``*``."""

_BAND_WIDTHS = (1, 5, 10, 20, 50, 100)
_MAX_SET = 5  # a Mondrian category set with more values than this is published as "*"


def _check_qis(frame: pd.DataFrame, qis: Sequence[str]) -> None:
    for q in qis:
        if q not in frame.columns:
            raise InputError(f"quasi-identifier '{q}' is not a column", field=q)


def _keys(frame: pd.DataFrame, qis: Sequence[str]) -> np.ndarray:
    """One integer per row identifying its equivalence class (missing values form their own class)."""
    if not qis:
        return np.zeros(len(frame), dtype=np.int64)
    codes, _ = (
        pd.MultiIndex.from_frame(frame[list(qis)].astype(str)).factorize()
        if len(qis) > 1
        else (pd.factorize(frame[qis[0]].astype(str)))
    )
    return np.asarray(codes, dtype=np.int64)


def class_sizes(frame: pd.DataFrame, qis: Sequence[str]) -> np.ndarray:
    """For each row, the size of its equivalence class over ``qis``."""
    _check_qis(frame, qis)
    keys = _keys(frame, qis)
    return np.bincount(keys)[keys] if len(keys) else np.zeros(0, dtype=np.int64)


def k_anonymity(frame: pd.DataFrame, qis: Sequence[str]) -> int:
    """The smallest equivalence class over ``qis`` (0 for an empty table)."""
    sizes = class_sizes(frame, qis)
    return int(sizes.min()) if len(sizes) else 0


def l_diversity(frame: pd.DataFrame, qis: Sequence[str], sensitive: str) -> int:
    """Distinct l-diversity: the fewest distinct values of ``sensitive`` in any equivalence class (0 if empty)."""
    _check_qis(frame, [*qis, sensitive])
    if not len(frame):
        return 0
    keys = _keys(frame, qis)
    pairs = pd.DataFrame({"k": keys, "s": pd.factorize(frame[sensitive].astype(str))[0]}).drop_duplicates()
    return int(pairs.groupby("k", sort=False).size().min())


@dataclass(frozen=True)
class AnonymityMeasure:
    """k and l of one table: ``k`` (smallest class), ``l`` (``None`` without a sensitive attribute), the number of
    classes and of records, and how many records sit in classes smaller than ``target_k``."""

    k: int
    l: int | None  # noqa: E741 - the letter of the literature
    classes: int
    records: int
    at_risk: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "l": self.l,
            "classes": self.classes,
            "records": self.records,
            "at_risk": self.at_risk,
        }


def measure(
    frame: pd.DataFrame, qis: Sequence[str], *, sensitive: str | None = None, target_k: int = 1
) -> AnonymityMeasure:
    """k, l, class count and records in classes smaller than ``target_k``."""
    sizes = class_sizes(frame, qis)
    keys = _keys(frame, qis)
    return AnonymityMeasure(
        k=int(sizes.min()) if len(sizes) else 0,
        l=l_diversity(frame, qis, sensitive) if sensitive is not None else None,
        classes=int(keys.max()) + 1 if len(keys) else 0,
        records=len(frame),
        at_risk=int((sizes < target_k).sum()),
    )


# ----------------------------------------------------------------------------------------- simple generalisations


def numeric_bands(values: pd.Series, width: int) -> pd.Series:
    """Numbers as bands ``[lo-hi]`` of ``width`` (``40-49`` for width 10); width 1 keeps the value."""
    num = pd.to_numeric(values, errors="coerce")
    if width <= 1:
        return values.astype(str).where(values.notna(), "")
    lo = (np.floor(num / width) * width).astype("Int64")
    out = lo.astype(str) + "-" + (lo + width - 1).astype(str)
    return out.where(num.notna(), "*").astype(str)


def truncate_postcode(values: pd.Series, keep: int) -> pd.Series:
    """Postcodes cut to their first ``keep`` non-space characters, then ``*`` (``75011`` -> ``750*``)."""
    s = values.astype(str).str.replace(" ", "", regex=False).str.upper()
    if keep <= 0:
        return pd.Series("*", index=values.index)
    cut = s.str.slice(0, keep)
    return (cut + np.where(s.str.len() > keep, "*", "")).where(values.notna(), "*")


def coarsen_date(values: pd.Series, level: str) -> pd.Series:
    """Dates coarsened to ``day`` (ISO date), ``month`` (``1985-03``), ``year``, ``decade`` (``1980s``) or ``*``."""
    if level == "*":
        return pd.Series("*", index=values.index)
    d = pd.to_datetime(values, errors="coerce", format="mixed")
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
    if level == "decade":
        out = ((d.dt.year // 10) * 10).astype("Int64").astype(str) + "s"
    else:
        out = d.dt.strftime(fmt[level])
    return out.where(d.notna(), "*").astype(str)


_DATE_LEVELS = ("day", "month", "year", "decade", "*")


def _ladder_len(kind: str, values: pd.Series) -> int:
    if kind == "numeric":
        return len(_BAND_WIDTHS) + 1
    if kind == "postcode":
        return int(values.astype(str).str.replace(" ", "", regex=False).str.len().max() or 0) + 1
    if kind == "date":
        return len(_DATE_LEVELS)
    return 2


def generalize(values: pd.Series, kind: str, level: int) -> pd.Series:
    """``values`` at ``level`` of the ``kind`` ladder (0 = as given, the top = ``*``)."""
    if kind not in GENERALIZATIONS:
        raise ValueError(f"`kind` must be one of {', '.join(GENERALIZATIONS)}, got {kind!r}")
    top = _ladder_len(kind, values) - 1
    if level >= top:
        return pd.Series("*", index=values.index)
    if kind == "numeric":
        return numeric_bands(values, _BAND_WIDTHS[level])
    if kind == "postcode":
        longest = top
        return truncate_postcode(values, longest - level) if level else values.astype(str)
    if kind == "date":
        return coarsen_date(values, _DATE_LEVELS[level])
    return values.astype(str)


@dataclass(frozen=True)
class KAnonResult:
    """The generalised table (suppressed records removed), its levels or method, and what was suppressed."""

    frame: pd.DataFrame
    suppressed: int
    achieved_k: int
    method: str
    levels: Mapping[str, int] = field(default_factory=dict)


def _suppress(
    frame: pd.DataFrame, qis: Sequence[str], k: int, budget: int
) -> tuple[pd.DataFrame, int] | None:
    small = class_sizes(frame, qis) < k
    n = int(small.sum())
    if n > budget:
        return None
    return (frame.loc[~small].reset_index(drop=True) if n else frame.reset_index(drop=True)), n


def generalize_to_k(
    frame: pd.DataFrame,
    qis: Mapping[str, str],
    *,
    k: int,
    max_suppression: float = 0.05,
) -> KAnonResult:
    """Greedy full-domain generalisation: starting from the raw values, raise one quasi-identifier's ladder level
    at a time (the one that leaves the fewest records in classes smaller than ``k``) until those records are at
    most ``max_suppression`` of the table, then suppress them. ``qis`` maps each column to its ladder kind."""
    if k < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    if not 0 <= max_suppression <= 1:
        raise ValueError(f"`max_suppression` must be in [0, 1], got {max_suppression}")
    _check_qis(frame, list(qis))
    budget = int(max_suppression * len(frame))
    tops = {q: _ladder_len(kind, frame[q]) - 1 for q, kind in qis.items()}
    levels = dict.fromkeys(qis, 0)
    cache: dict[tuple[str, int], pd.Series] = {}

    def column(q: str, lv: int) -> pd.Series:
        if (q, lv) not in cache:
            cache[(q, lv)] = generalize(frame[q], qis[q], lv)
        return cache[(q, lv)]

    def table(lv: Mapping[str, int]) -> pd.DataFrame:
        out = frame.copy()
        for q in qis:
            out[q] = column(q, lv[q])
        return out

    names = list(qis)
    current = table(levels)
    while True:
        done = _suppress(current, names, k, budget)
        if done is not None:
            kept, n = done
            return KAnonResult(
                kept, n, k_anonymity(kept, names) if len(kept) else 0, "generalize", dict(levels)
            )
        best: tuple[int, str] | None = None
        for q in names:
            if levels[q] >= tops[q]:
                continue
            trial = dict(levels)
            trial[q] += 1
            sub = pd.DataFrame({n: column(n, trial[n]) for n in names})
            at_risk = int((class_sizes(sub, names) < k).sum())
            if best is None or at_risk < best[0]:
                best = (at_risk, q)
        if best is None:  # everything is "*": one class of all records
            kept, n = _suppress(current, names, k, len(frame)) or (current.iloc[:0], len(frame))
            return KAnonResult(
                kept, n, k_anonymity(kept, names) if len(kept) else 0, "generalize", dict(levels)
            )
        levels[best[1]] += 1
        current = table(levels)


# ------------------------------------------------------------------------------------------------------ Mondrian


def _encode(col: pd.Series) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """(values as float64, is numeric, category labels for codes)."""
    if (
        pd.api.types.is_numeric_dtype(col.dtype)
        and not pd.api.types.is_bool_dtype(col.dtype)
        and col.notna().all()
    ):
        return col.to_numpy(dtype=np.float64), True, None
    codes, uniques = pd.factorize(col.astype(str), sort=True)
    return codes.astype(np.float64), False, np.asarray(uniques, dtype=object)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def mondrian(
    frame: pd.DataFrame,
    qis: Sequence[str],
    *,
    k: int,
    l: int = 1,  # noqa: E741
    sensitive: str | None = None,
) -> KAnonResult:
    """Strict Mondrian partitioning of ``frame`` over ``qis`` to ``k`` (and distinct ``l`` of ``sensitive``).
    Numeric QIs become ``lo-hi`` ranges (or the value when a partition holds one); categorical ones the ``|``-joined
    set of values in the partition, or ``*`` beyond five. Every record is kept; a table of fewer than ``k``
    records (or fewer than ``l`` distinct sensitive values) cannot be anonymised and raises ``InputError``."""
    if k < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    if l < 1:
        raise ValueError(f"`l` must be >= 1, got {l}")
    if l > 1 and sensitive is None:
        raise ValueError("`l` > 1 needs a `sensitive` attribute")
    _check_qis(frame, [*qis, *([sensitive] if sensitive else [])])
    n = len(frame)
    if n == 0:
        return KAnonResult(frame.copy(), 0, 0, "mondrian")
    sens = pd.factorize(frame[sensitive].astype(str))[0] if sensitive is not None and l > 1 else None
    if n < k or (sens is not None and len(np.unique(sens)) < l):
        raise InputError(
            f"the table has {n} records, fewer than k={k} (or fewer than l={l} sensitive values)"
        )
    encoded = [_encode(frame[q]) for q in qis]
    data = np.column_stack([e[0] for e in encoded]) if encoded else np.zeros((n, 0))
    spans = np.ptp(data, axis=0) if n else np.zeros(len(qis))
    spans = np.where(spans > 0, spans, 1.0)
    leaf = np.zeros(n, dtype=np.int64)
    next_leaf = 0
    stack = [np.arange(n)]
    while stack:
        idx = stack.pop()
        if len(idx) < 2 * k:
            leaf[idx] = next_leaf
            next_leaf += 1
            continue
        sub = data[idx]
        widths = np.ptp(sub, axis=0) / spans
        done = False
        for d in np.argsort(-widths, kind="stable"):
            if widths[d] <= 0:
                break
            col = sub[:, d]
            med = np.median(col)
            for left_mask in (col <= med, col < med):
                nl = int(left_mask.sum())
                if nl < k or len(idx) - nl < k:
                    continue
                if sens is not None:
                    s = sens[idx]
                    if len(np.unique(s[left_mask])) < l or len(np.unique(s[~left_mask])) < l:
                        continue
                stack.append(idx[~left_mask])
                stack.append(idx[left_mask])
                done = True
                break
            if done:
                break
        if not done:
            leaf[idx] = next_leaf
            next_leaf += 1
    out = frame.copy()
    for q, (vals, numeric, labels) in zip(qis, encoded, strict=True):
        g = pd.DataFrame({"leaf": leaf, "v": vals})
        if numeric:
            agg = g.groupby("leaf")["v"].agg(["min", "max"])
            text = np.where(
                agg["min"] == agg["max"],
                agg["min"].map(_fmt_num),
                agg["min"].map(_fmt_num) + "-" + agg["max"].map(_fmt_num),
            )
        else:
            assert labels is not None
            pairs = g.drop_duplicates().sort_values(["leaf", "v"])
            pairs["name"] = labels[pairs["v"].to_numpy(dtype=np.int64)]
            grouped = pairs.groupby("leaf")["name"]
            counts = grouped.size()
            joined = grouped.agg("|".join)
            text = np.where(counts.to_numpy() > _MAX_SET, "*", joined.to_numpy())
        mapping = np.asarray(text, dtype=object)
        out[q] = pd.Series(mapping[leaf], index=frame.index, dtype=object).astype(str)
    return KAnonResult(out.reset_index(drop=True), 0, k_anonymity(out, list(qis)), "mondrian")
