from __future__ import annotations

import numpy as np
import pytest

from garrison.core import ModelInputMismatchError
from garrison.data import encode_labels


def test_integer_labels_without_classes() -> None:
    assert encode_labels(np.array([0, 2, 1]), None, 3).tolist() == [0, 2, 1]
    assert encode_labels(np.array([0.0, 1.0]), None, 2).tolist() == [0, 1]
    assert encode_labels(np.array(["1", "0"]), None, 2).tolist() == [1, 0]
    assert encode_labels(np.array([1, 0]), None, 2).dtype == np.int64


def test_labels_outside_the_outputs_are_named() -> None:
    with pytest.raises(ModelInputMismatchError, match="'3'") as exc:
        encode_labels(np.array([0, 3, 1]), None, 2)
    assert exc.value.field == "label"
    with pytest.raises(ModelInputMismatchError, match="'cat'"):
        encode_labels(np.array(["dog", "cat"]), ["dog", "fox"], 2)


def test_string_labels_map_to_the_model_class_order() -> None:
    y = np.array(["good", "bad", "good"])
    assert encode_labels(y, ("bad", "good"), 2).tolist() == [1, 0, 1]
    assert encode_labels(y, ["good", "bad"], 2).tolist() == [0, 1, 0]


def test_labels_and_classes_of_different_dtypes_compare_as_strings() -> None:
    assert encode_labels(np.array(["1", "0", "1"]), np.array([0, 1]), 2).tolist() == [1, 0, 1]
    assert encode_labels(np.array([1, 0]), ["0", "1"], 2).tolist() == [1, 0]
    assert encode_labels(np.array([1.0, 0.0]), [0, 1], 2).tolist() == [1, 0]


def test_classes_must_match_the_number_of_outputs() -> None:
    with pytest.raises(ModelInputMismatchError) as exc:
        encode_labels(np.array([0]), [0, 1, 2], 2)
    assert exc.value.field == "classes"
