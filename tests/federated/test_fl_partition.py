"""IID and Dirichlet partitions: sizes, skew, determinism, and every row in exactly one client."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from garrison.federated import dirichlet_partition, iid_partition, label_skew


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return load_digits().target


def test_iid_shards_have_equal_sizes_and_cover_every_row() -> None:
    parts = iid_partition(1000, 12, seed=1)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(1000))


def test_dirichlet_small_alpha_skews_labels_more_than_large_alpha(labels: np.ndarray) -> None:
    skewed = label_skew(labels, dirichlet_partition(labels, 12, alpha=0.1, seed=0))
    mild = label_skew(labels, dirichlet_partition(labels, 12, alpha=100.0, seed=0))
    iid = label_skew(labels, iid_partition(len(labels), 12, seed=0))
    assert skewed > 0.5
    assert mild < 0.15
    assert iid < 0.15
    assert skewed > 3 * mild


def test_dirichlet_gives_every_client_at_least_min_size(labels: np.ndarray) -> None:
    parts = dirichlet_partition(labels, 12, alpha=0.5, min_size=20, seed=4)
    assert min(len(p) for p in parts) >= 20


def test_partitions_are_deterministic_in_the_seed(labels: np.ndarray) -> None:
    a = dirichlet_partition(labels, 8, alpha=0.5, seed=7)
    b = dirichlet_partition(labels, 8, alpha=0.5, seed=7)
    c = dirichlet_partition(labels, 8, alpha=0.5, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_bad_arguments_name_the_parameter(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_partition(labels, 4, alpha=0.0)
    with pytest.raises(ValueError, match="n_clients"):
        iid_partition(10, 0)
    with pytest.raises(ValueError, match="cannot split 3 rows"):
        iid_partition(3, 5)


@settings(max_examples=40, deadline=None)
@given(
    y=st.lists(st.integers(0, 4), min_size=8, max_size=200),
    n_clients=st.integers(1, 8),
    alpha=st.floats(0.05, 50.0),
    seed=st.integers(0, 2**16),
)
def test_every_row_lands_in_exactly_one_client(y: list[int], n_clients: int, alpha: float, seed: int) -> None:
    labels = np.asarray(y)
    if len(labels) < n_clients:
        return
    for parts in (
        dirichlet_partition(labels, n_clients, alpha=alpha, seed=seed),
        iid_partition(len(labels), n_clients, seed=seed),
    ):
        assert len(parts) == n_clients
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))
