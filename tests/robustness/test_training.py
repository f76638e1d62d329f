from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from garrison.robustness.training import TrainingResult, adversarial_training, pgd_accuracy  # noqa: E402

EPS = 0.15


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # tiny models run as fast on one thread, and OpenMP's two threads crawl when other processes share the cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.3, random_state=0, stratify=d.target)
    return x_tr, y_tr, x_te, y_te


def _cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )


def _plain_training(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()
    module.eval()


@pytest.fixture(scope="module")
def undefended(digits: tuple[np.ndarray, ...]) -> tuple[float, float]:
    x_tr, y_tr, x_te, y_te = digits
    model = _cnn()
    _plain_training(model, x_tr, y_tr, epochs=5)
    return pgd_accuracy(model, x_te, y_te, eps=EPS, steps=20)


@pytest.mark.parametrize("method", ["pgd-at", "trades"])
def test_adversarial_training_raises_robust_accuracy(
    digits: tuple[np.ndarray, ...], undefended: tuple[float, float], method: str
) -> None:
    x_tr, y_tr, x_te, y_te = digits
    clean_plain, robust_plain = undefended
    assert clean_plain > 0.9  # the undefended model is a real model, not a broken one
    model = _cnn()
    result = adversarial_training(model, x_tr, y_tr, method=method, eps=EPS, epochs=3, lr=1e-2, batch_size=64)
    assert isinstance(result, TrainingResult) and result.module is model
    assert [row["epoch"] for row in result.history] == [1.0, 2.0, 3.0]
    assert not model.training
    clean, robust = pgd_accuracy(model, x_te, y_te, eps=EPS, steps=20)
    assert robust > robust_plain + 0.2, (robust, robust_plain)
    assert clean > 0.6
    # a sanity check that the evaluation is not fooled: far beyond the trained budget nothing survives
    assert pgd_accuracy(model, x_te, y_te, eps=0.5, steps=20)[1] <= 0.05


def test_early_stopping_restores_the_latest_epoch_level_with_the_best() -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)
    # after epoch 3 the weights are wiped (a stand-in for training that went wrong): validation accuracy falls
    # far below the best, so patience 1 stops early and an earlier epoch's weights come back
    x_tr, y_tr, x_val, y_val = x[600:1400], y[600:1400], x[:600], y[:600]
    model = _cnn()
    seen: list[int] = []
    result = adversarial_training(
        model,
        x_tr,
        y_tr,
        eps=EPS,
        epochs=8,
        lr=1e-2,
        batch_size=64,
        x_val=x_val,
        y_val=y_val,
        patience=1,
        seed=3,
        progress=lambda epoch, row: (
            seen.append(epoch),
            epoch == 3 and [p.data.zero_() for p in model.parameters()],
        ),
    )
    assert result.stopped_early and result.stop_reason == "early-stopping"
    assert seen == [int(row["epoch"]) for row in result.history]
    assert len(result.history) < 8
    # the one-standard-error rule over the full-ε epochs: the latest epoch within one binomial standard error
    # of the best accuracy seen so far
    best, chosen = -1.0, 0
    for row in result.history:
        if row["eps"] < EPS:
            continue
        acc = row["robust_val_acc"]
        if best < 0 or acc >= best - np.sqrt(best * (1 - best) / len(y_val)):
            best, chosen = max(best, acc), int(row["epoch"])
    assert result.best_epoch == chosen < len(result.history)
    # the restored weights reproduce the chosen epoch's number (validation PGD: attack_steps, seed + 1)
    _, robust = pgd_accuracy(model, x_val, y_val, eps=EPS, steps=10, seed=4)
    assert robust == pytest.approx(result.best_robust_val_acc)


def _run(
    digits: tuple[np.ndarray, ...], seed: int, model: torch.nn.Module | None = None
) -> tuple[TrainingResult, dict[str, torch.Tensor]]:
    x_tr, y_tr, _, _ = digits
    model = model if model is not None else _cnn()
    result = adversarial_training(
        model, x_tr[:400], y_tr[:400], method="trades", eps=EPS, epochs=2, batch_size=64, seed=seed
    )
    return result, model.state_dict()


def test_training_is_deterministic_under_seed_and_leaves_global_rng_alone(
    digits: tuple[np.ndarray, ...],
) -> None:
    model = _cnn()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first, weights1 = _run(digits, seed=7, model=model)
    assert torch.equal(torch.get_rng_state(), state)
    second, weights2 = _run(digits, seed=7)
    _, weights3 = _run(digits, seed=8)
    assert all(torch.equal(weights1[k], weights2[k]) for k in weights1)
    assert not all(torch.equal(weights1[k], weights3[k]) for k in weights1)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]


def test_l2_training_runs_and_deadline_stops_between_batches(digits: tuple[np.ndarray, ...]) -> None:
    x_tr, y_tr, _, _ = digits
    result = adversarial_training(_cnn(), x_tr[:300], y_tr[:300], eps=1.0, norm="l2", epochs=1, batch_size=64)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])
    model = _cnn()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    stopped = adversarial_training(model, x_tr, y_tr, eps=EPS, epochs=5, deadline=time.monotonic())
    assert stopped.stop_reason == "deadline" and stopped.history == [] and stopped.best_epoch == 0
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())


def test_pgd_accuracy_keeps_l2_perturbations_useful(digits: tuple[np.ndarray, ...]) -> None:
    x_tr, y_tr, x_te, y_te = digits
    model = _cnn()
    _plain_training(model, x_tr, y_tr, epochs=3)
    clean, tiny = pgd_accuracy(model, x_te, y_te, eps=1e-4, norm="l2")
    _, large = pgd_accuracy(model, x_te, y_te, eps=3.0, norm="l2")
    assert tiny == pytest.approx(clean, abs=0.01)
    assert large < 0.1 < clean


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "fgsm"}, "`method` must be one of pgd-at, trades"),
        ({"norm": "l1"}, "`norm` must be one of linf, l2"),
        ({"eps": 0.0}, "`eps` must be > 0"),
        ({"epochs": 0}, "`epochs` must be >= 1"),
        ({"x_val": np.zeros((2, 1, 8, 8), np.float32)}, "given together"),
    ],
)
def test_bad_arguments_are_refused(digits: tuple[np.ndarray, ...], kwargs: dict, message: str) -> None:
    x_tr, y_tr, _, _ = digits
    args = {"eps": EPS, **kwargs}
    with pytest.raises(ValueError, match=message):
        adversarial_training(_cnn(), x_tr[:20], y_tr[:20], **args)


def test_val_fraction_zero_trains_on_everything_and_keeps_the_last_epoch() -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images[:300] / 16.0).astype(np.float32)[:, None]
    y = data.target[:300].astype(np.int64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    result = adversarial_training(net, x, y, eps=0.05, epochs=3, val_fraction=0.0, attack_steps=2, seed=0)
    assert result.best_epoch == 3 and result.stop_reason == "completed"
    assert all(np.isnan(row["robust_val_acc"]) for row in result.history)
    with pytest.raises(ValueError, match="val_fraction"):
        adversarial_training(net, x, y, eps=0.05, epochs=1, val_fraction=1.0)
