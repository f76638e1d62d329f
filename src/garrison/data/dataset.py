"""A loaded dataset: the numeric array attacks work on, the labels, the schema and the records it came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from garrison.data.codec import FeatureCodec
from garrison.data.schema import Schema

__all__ = ["Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``x`` of shape ``(n, *schema.sample_shape)`` in codec space, labels ``y`` as loaded.

    ``codec`` maps ``x`` to and from ``records`` (the raw feature columns of a CSV/Parquet file); it is ``None``
    for array data (``.npz``), whose ``x`` goes to models as is. ``sha256`` is the digest of the source file.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None
    schema: Schema
    codec: FeatureCodec | None = None
    records: pd.DataFrame | None = None
    path: Path | None = None
    sha256: str | None = None
    label: str | None = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_features(self) -> int:
        return self.schema.n_features

    def subset(self, idx: np.ndarray) -> Dataset:
        """The rows ``idx`` (integer indices or a boolean mask), as a new dataset of the same file and schema."""
        index = np.asarray(idx)
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        records = self.records.iloc[index].reset_index(drop=True) if self.records is not None else None
        return replace(
            self,
            x=self.x[index],
            y=self.y[index] if self.y is not None else None,
            records=records,
        )

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={len(self)}, sample_shape={self.schema.sample_shape})"
