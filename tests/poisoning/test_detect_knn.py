"""Poison detection without a model: k-NN label disagreement on tables and flat digits, the robust null, input
validation, and the spectral and clustering pieces on synthetic features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from threadpoolctl import threadpool_limits

from garrison.core.errors import ConfigError, InputError
from garrison.poisoning import poison
from garrison.poisoning.clustering import activation_clusters
from garrison.poisoning.detect import scan_training_set
from garrison.poisoning.knn import disagreement_flow
from garrison.poisoning.robust_null import asymmetry_z, modified_z
from garrison.poisoning.spectral import spectral_signatures


def flipped(x: np.ndarray, y: np.ndarray, share: float, target: int, seed: int = 0):
    rate = share * len(y) / int((y != target).sum())
    return poison(x, y, kind="flip-targeted", rate=rate, target=target, seed=seed)


@pytest.fixture(autouse=True)
def one_thread():
    """The scan's linear algebra is on tiny matrices: BLAS threads only contend (the CI box has 2 cores)."""
    with threadpool_limits(1):
        yield


def recall_precision(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = len(set(found.tolist()) & set(truth.tolist()))
    return hits / len(truth), hits / max(len(found), 1)


def test_targeted_label_flips_on_a_table_are_found() -> None:
    x, y = load_digits(return_X_y=True)
    p = flipped(x, y.astype(np.int64), 0.05, target=1)
    scan = scan_training_set(p.x, p.y, seed=0)
    assert scan.method == "knn" and scan.representation is None
    recall, precision = recall_precision(scan.suspects, p.indices)
    assert recall >= 0.9 and precision >= 0.9
    assert scan.flagged_classes == (1,)
    assert set(scan.components) == {"knn", "outlier_z"}
    assert json.loads(json.dumps(scan.to_dict()))["flagged_classes"] == [1]


def test_two_classes_are_enough_for_flips_into_the_smaller_one() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    p = flipped(x, y.astype(np.int64), 0.10, target=0)
    scan = scan_training_set(p.x, p.y, seed=0)
    recall, _ = recall_precision(scan.suspects, p.indices)
    assert scan.flagged_classes == (0,)
    assert recall >= 0.9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_tables_flag_nothing(seed: int) -> None:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), 1200, replace=False)
    scan = scan_training_set(x[rows], y[rows].astype(np.int64), seed=seed)
    assert scan.flagged_classes == ()
    assert len(scan.suspects) == 0
    x, y = load_breast_cancer(return_X_y=True)
    assert scan_training_set(x, y.astype(np.int64), seed=seed).flagged_classes == ()


def test_the_knn_scan_is_deterministic() -> None:
    x, y = load_digits(return_X_y=True)
    p = flipped(x, y.astype(np.int64), 0.05, target=7, seed=4)
    one, two = scan_training_set(p.x, p.y, seed=5), scan_training_set(p.x, p.y, seed=5)
    assert one.to_dict() == two.to_dict()


def test_bad_inputs_say_what_is_needed() -> None:
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    with pytest.raises(InputError, match="40 rows but `y` has 39"):
        scan_training_set(x, y[:-1])
    with pytest.raises(InputError, match="at least 2 classes, got 1"):
        scan_training_set(x, np.zeros(40, dtype=np.int64))
    with pytest.raises(InputError, match="labels must be integers, got dtype float64"):
        scan_training_set(x, y.astype(np.float64))
    with pytest.raises(InputError, match=r"at least 11 rows .* class 1 \(5\)"):
        scan_training_set(x[:25], y[:25])
    with pytest.raises(InputError, match="NaN"):
        scan_training_set(np.where(np.eye(40, 3) > 0, np.nan, x), y)
    with pytest.raises(InputError, match="1-d"):
        scan_training_set(x, y[:, None])
    with pytest.raises(ConfigError, match="`method` must be one of"):
        scan_training_set(x, y, method="magic")
    with pytest.raises(ConfigError, match="needs a `model`"):
        scan_training_set(x, y, method="spectral-clustering")
    with pytest.raises(ConfigError, match="`k` must be"):
        scan_training_set(x, y, k=0)


def test_modified_z_is_robust_to_the_outlier_it_looks_for() -> None:
    z = modified_z(np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 9.0]))
    assert z[-1] > 3.5 and np.all(np.abs(z[:-1]) < 3.5)
    assert np.all(modified_z(np.ones(5)) == 0)
    assert modified_z(np.array([0.0, 0.0, 0.0, 1.0]))[-1] > 0  # MAD 0: the mean deviation stands in


def test_boundary_asymmetry_is_the_null_for_knn_evidence() -> None:
    # class 0: 3 rows sit among 1, and 3 rows of 1 sit among 0 (shared overlap); class 2: 12 rows sit among 1
    y = np.array([0, 0, 0, 1, 1, 1] + [2] * 12)
    labels = np.array([[1] * 5] * 3 + [[0] * 5] * 3 + [[1] * 5] * 12)
    flow = disagreement_flow(y, labels, np.array([0, 1, 2]))
    assert flow[0, 1] == 3 and flow[1, 0] == 3 and flow[2, 1] == 12
    z = asymmetry_z(flow)
    assert z[2] > 3.0 and z[0] < 0 and z[1] < 0


def test_spectral_signatures_score_the_planted_direction_highest() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 8))
    y = np.repeat([0, 1], 100)
    planted = np.arange(10)  # ten rows of class 0 shifted far along one axis
    feats[planted, 3] += 12.0
    sig = spectral_signatures(feats, y)
    top = np.argsort(sig.scores[y == 0])[-10:]
    assert set(top.tolist()) == set(planted.tolist())
    assert sig.top_share[0] > 0.5 > sig.top_share[1]
    assert np.all(sig.projection[planted] > 0)  # the heavier tail is made positive


@pytest.mark.parametrize("reduce", ["pca", "ica"])
def test_activation_clusters_split_a_class_made_of_two_groups(reduce: str) -> None:
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(120, 12))
    feats[:30] += 8.0  # class 0 holds two groups; class 1 is one blob
    y = np.repeat([0, 1], 60)
    splits = activation_clusters(feats, y, n_dims=4, reduce=reduce, seed=0)
    zero = splits[0]
    side = zero.labels[zero.members < 30]
    assert len(set(side.tolist())) == 1 and sorted(zero.sizes) == [30, 30]
    assert zero.silhouette > splits[1].silhouette
    with pytest.raises(ValueError, match="`reduce` must be one of"):
        activation_clusters(feats, y, reduce="umap")
