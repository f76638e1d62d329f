"""One federated experiment's data and the behaviour of each client, with no Flower in sight.

:func:`build_scenario` loads the data (sklearn digits or an ``.npz``), scales it to [0, 1], holds out a stratified
test set for the server, splits the rest across clients and picks the malicious ones (seeded). :func:`client_update`
is what client ``pid`` sends back for a round: honest SGD, or one of the attacks of :mod:`garrison.federated.attacks`.
The Flower ``ClientApp`` calls it; the tests call it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from garrison.core.errors import DataError
from garrison.federated import attacks
from garrison.federated.config import FLConfig
from garrison.federated.partition import dirichlet_partition, iid_partition
from garrison.federated.training import BatchHook, flatten, local_train, unflatten

__all__ = ["ClientReply", "Scenario", "build_scenario", "client_update", "patch_trigger"]


@dataclass(frozen=True)
class ClientReply:
    """What one client sends: its weights, the number of examples it claims, its training loss."""

    weights: list[np.ndarray]
    num_examples: int
    loss: float


@dataclass(frozen=True)
class Scenario:
    """The data of every client (``parts`` index ``x_train``), the server's test set and the malicious clients."""

    config: FLConfig
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    parts: tuple[np.ndarray, ...]
    malicious: frozenset[int]
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def patch_trigger(x: np.ndarray, *, size: int = 3, value: float = 1.0) -> np.ndarray:
    """BadNets-style trigger (the same patch as ``garrison.poisoning.Trigger``): a ``size`` square of ``value`` at
    the bottom-right of square images given as flat rows; the last ``size²`` features for non-square rows."""
    out = np.array(x, dtype=np.float32, copy=True)
    d = out.shape[1]
    side = math.isqrt(d)
    if side * side == d and side >= size:
        img = out.reshape(len(out), side, side)
        img[:, side - size :, side - size :] = value
        return img.reshape(len(out), d)
    out[:, d - size * size :] = value
    return out


def _load_source(source: str, *, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    if source == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return np.asarray(x, dtype=np.float64), np.asarray(y)
    from garrison.data import load_dataset

    path = Path(source)
    dataset = load_dataset(path if path.is_absolute() else base_dir / path, format="npz")
    if dataset.y is None:
        raise DataError("an .npz for federated learning needs arrays x and y", path=source)
    x = np.asarray(dataset.x, dtype=np.float64).reshape(len(dataset.x), -1)
    y = np.asarray(dataset.y)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError("labels `y` must be integer class indices", path=source, field="y")
    return x, y


def build_scenario(config: FLConfig) -> Scenario:
    """The data split of ``config`` (deterministic in ``config.seed``). A relative ``.npz`` path is read from the
    config file's directory."""
    from sklearn.model_selection import train_test_split

    x, y = _load_source(config.source, base_dir=Path(config.path).parent if config.path else Path())
    classes, y = np.unique(y, return_inverse=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=config.test_fraction, random_state=config.seed, stratify=y
    )
    lo, hi = x_tr.min(), x_tr.max()
    span = float(hi - lo) or 1.0
    x_tr = ((x_tr - lo) / span).astype(np.float32)
    x_te = np.clip((x_te - lo) / span, 0, 1).astype(np.float32)
    if config.partition == "iid":
        parts = iid_partition(len(y_tr), config.clients, seed=config.seed)
    else:
        parts = dirichlet_partition(y_tr, config.clients, alpha=config.alpha, seed=config.seed)
    rng = np.random.default_rng(config.seed + 1)
    malicious = frozenset(int(i) for i in rng.choice(config.clients, size=config.malicious, replace=False))
    if config.attack.kind == "backdoor" and config.attack.target >= len(classes):
        raise DataError(f"backdoor target {config.attack.target} is not a class (0..{len(classes) - 1})")
    return Scenario(
        config=config,
        x_train=x_tr,
        y_train=y_tr.astype(np.int64),
        x_test=x_te,
        y_test=y_te.astype(np.int64),
        parts=tuple(parts),
        malicious=malicious,
        n_classes=len(classes),
    )


def _seed(scenario: Scenario, pid: int, server_round: int, salt: int = 0) -> int:
    return int(np.random.SeedSequence([scenario.config.seed, pid, server_round, salt]).generate_state(1)[0])


def _train(
    scenario: Scenario,
    weights: list[np.ndarray],
    idx: np.ndarray,
    seed: int,
    *,
    y: np.ndarray | None = None,
    batch_hook: BatchHook | None = None,
    anomaly_weight: float = 0.0,
) -> tuple[list[np.ndarray], float]:
    c = scenario.config
    return local_train(
        weights,
        scenario.x_train[idx],
        scenario.y_train[idx] if y is None else y,
        n_classes=scenario.n_classes,
        kind=c.model,
        hidden=c.hidden,
        epochs=c.local_epochs,
        lr=c.lr,
        batch_size=c.batch_size,
        seed=seed,
        batch_hook=batch_hook,
        anomaly_weight=anomaly_weight,
    )


def client_update(
    scenario: Scenario, pid: int, weights: list[np.ndarray], *, server_round: int
) -> ClientReply:
    """What client ``pid`` sends in ``server_round`` given the global ``weights``."""
    c, a = scenario.config, scenario.config.attack
    idx = scenario.parts[pid]
    seed = _seed(scenario, pid, server_round)
    if pid not in scenario.malicious or a.kind == "none":
        trained, loss = _train(scenario, weights, idx, seed)
        return ClientReply(trained, len(idx), loss)
    g = flatten(weights)
    if a.kind == "label-flip":
        flipped = scenario.n_classes - 1 - scenario.y_train[idx]
        trained, loss = _train(scenario, weights, idx, seed, y=flipped)
        return ClientReply(trained, len(idx), loss)
    if a.kind == "backdoor":
        target, share = a.target, a.poison_fraction

        def hook(bx: np.ndarray, by: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            k = max(1, round(share * len(bx)))
            rows = rng.choice(len(bx), size=k, replace=False)
            bx, by = bx.copy(), by.copy()
            bx[rows] = patch_trigger(bx[rows])
            by[rows] = target
            return bx, by

        trained, loss = _train(scenario, weights, idx, seed, batch_hook=hook, anomaly_weight=a.anomaly_weight)
        delta = attacks.scaling(flatten(trained) - g, factor=a.scale or c.clients)
        return ClientReply(unflatten(g + delta, weights), len(idx), loss)
    if a.kind in ("sign-flip", "scaling"):
        trained, loss = _train(scenario, weights, idx, seed)
        delta = flatten(trained) - g
        delta = (
            attacks.sign_flip(delta)
            if a.kind == "sign-flip"
            else attacks.scaling(delta, factor=a.scale or c.clients)
        )
        return ClientReply(unflatten(g + delta, weights), len(idx), loss)
    # statistic attacks: the colluders pool their data, train honest updates on disjoint chunks of it and derive the
    # same malicious update from those (the same seed for every colluder, so they all send it)
    colluders = c.clients  # a seed no single client uses: every colluder derives the same update
    pooled = np.concatenate([scenario.parts[m] for m in sorted(scenario.malicious)])
    chunks = np.array_split(
        np.random.default_rng(_seed(scenario, colluders, server_round)).permutation(pooled),
        max(4, 2 * len(scenario.malicious)),
    )
    honest = []
    losses = []
    for j, chunk in enumerate(chunks):
        trained, loss = _train(
            scenario, weights, np.sort(chunk), _seed(scenario, colluders, server_round, j + 1)
        )
        honest.append(flatten(trained) - g)
        losses.append(loss)
    benign = attacks.benign_estimate(honest)
    if a.kind == "alie":
        delta = attacks.alie(
            benign, z=a.z if a.z is not None else attacks.alie_z(c.clients, len(scenario.malicious))
        )
    elif a.kind == "ipm":
        delta = attacks.ipm(benign, epsilon=a.epsilon)
    else:
        delta = attacks.min_max(benign)
    return ClientReply(unflatten(g + delta, weights), len(idx), float(np.mean(losses)))
