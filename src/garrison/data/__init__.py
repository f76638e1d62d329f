"""Datasets, their schema and the codec between records as users have them and the numeric space of attacks."""

from garrison.data.codec import UNKNOWN_CATEGORY, FeatureCodec
from garrison.data.dataset import Dataset
from garrison.data.digest import file_sha256
from garrison.data.labels import encode_labels
from garrison.data.loaders import LABEL_COLUMNS, detect_format, load_dataset, load_datasets
from garrison.data.schema import FeatureKind, FeatureSpec, Schema, infer_array_schema, infer_schema

__all__ = [
    "LABEL_COLUMNS",
    "UNKNOWN_CATEGORY",
    "Dataset",
    "FeatureCodec",
    "FeatureKind",
    "FeatureSpec",
    "Schema",
    "detect_format",
    "encode_labels",
    "file_sha256",
    "infer_array_schema",
    "infer_schema",
    "load_dataset",
    "load_datasets",
]
