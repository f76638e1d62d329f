from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from garrison.core.errors import InputError, MissingDependencyError  # noqa: E402
from garrison.privacy import (  # noqa: E402
    IncompatibleModuleError,
    PrivacyLedger,
    default_delta,
    make_private,
    train_private,
    validate_module,
)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(x).astype(np.float32), y.astype(np.int64)


def _mlp(norm: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [torch.nn.Linear(30, 16)]
    if norm:
        layers.append(torch.nn.BatchNorm1d(16))
    return torch.nn.Sequential(*layers, torch.nn.ReLU(), torch.nn.Linear(16, 2))


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int = 64) -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return torch.utils.data.DataLoader(data, batch_size=batch_size)


def test_default_delta_is_the_power_of_ten_strictly_below_one_over_n() -> None:
    assert default_delta(455) == 1e-3
    assert default_delta(1000) == 1e-4  # 1e-3 would equal 1/n, not lie below it
    assert default_delta(9) == 0.1
    for n in (1, 7, 99, 100, 101, 60000):
        assert default_delta(n) < 1 / n


# torch warns on every backward pass through Opacus' hooks when the inputs need no gradient (train_private hides it)
@pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")
def test_ledger_is_read_from_the_engine(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    module = _mlp()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    private = make_private(
        module,
        opt,
        _loader(x, y),
        target_epsilon=2.0,
        epochs=2,
        accountant="rdp",
        generator=torch.Generator().manual_seed(0),
    )
    empty = private.ledger()
    assert empty.steps == 0 and empty.epsilon == 0.0
    assert empty.delta == 1e-3  # 569 samples: the default δ
    for xb, yb in private.data_loader:  # one epoch
        private.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(private.module(xb), yb).backward()
        private.optimizer.step()
    ledger = private.ledger()
    assert isinstance(ledger, PrivacyLedger)
    assert ledger.noise_multiplier == private.optimizer.noise_multiplier > 0
    assert ledger.max_grad_norm == private.optimizer.max_grad_norm == 1.0
    assert ledger.sample_rate == pytest.approx(private.data_loader.sample_rate) == pytest.approx(1 / 9)
    assert ledger.steps == sum(n for _, _, n in private.engine.accountant.history) == len(private.data_loader)
    assert ledger.epsilon == private.engine.get_epsilon(ledger.delta)
    assert 0 < ledger.epsilon < 2.0  # half the planned steps spent less than the budget
    assert ledger.accountant == "rdp" and ledger.n_samples == len(x)
    d = ledger.to_dict()
    assert d["epsilon"] == ledger.epsilon and d["history"] == [
        [ledger.noise_multiplier, ledger.sample_rate, 9]
    ]
    metric = ledger.epsilon_metric()
    assert metric.name == "epsilon" and metric.value == ledger.epsilon and metric.higher_is_better is False


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_epsilon_reaches_the_target_after_the_planned_epochs(
    cancer: tuple[np.ndarray, np.ndarray], accountant: str
) -> None:
    x, y = cancer
    result = train_private(
        _mlp(), x, y, target_epsilon=1.0, epochs=3, batch_size=64, lr=0.1, seed=0, accountant=accountant
    )
    ledger = result.ledger
    assert ledger.steps == 3 * 9 and ledger.accountant == accountant
    # Opacus searches σ until ε is within 0.01 below the target
    assert 1.0 - 0.011 <= ledger.epsilon <= 1.0 + 1e-9
    assert [row["epoch"] for row in result.history] == [1.0, 2.0, 3.0]
    assert not result.module.training
    # Opacus' hooks are gone: the module accumulates ordinary gradients over two backward passes
    assert not any(hasattr(p, "grad_sample") for p in result.module.parameters())
    module = result.module.train()
    for _ in range(2):
        torch.nn.functional.cross_entropy(module(torch.from_numpy(x[:8])), torch.from_numpy(y[:8])).backward()
    assert all(p.grad is not None and not hasattr(p, "grad_sample") for p in module.parameters())


def test_more_privacy_means_more_noise(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    strict = train_private(_mlp(), x, y, target_epsilon=0.5, epochs=2, seed=0, accountant="rdp").ledger
    loose = train_private(_mlp(), x, y, target_epsilon=8.0, epochs=2, seed=0, accountant="rdp").ledger
    assert strict.noise_multiplier > loose.noise_multiplier
    assert strict.epsilon < loose.epsilon


def test_training_is_deterministic_under_a_seed_and_leaves_the_global_rng_alone(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = cancer
    state = torch.get_rng_state()
    runs = [
        train_private(_mlp(), x, y, target_epsilon=2.0, epochs=2, seed=s, accountant="rdp") for s in (1, 1, 2)
    ]
    assert torch.equal(torch.get_rng_state(), state)
    same = [
        torch.equal(a, b)
        for a, b in zip(runs[0].module.parameters(), runs[1].module.parameters(), strict=True)
    ]
    other = [
        torch.equal(a, b)
        for a, b in zip(runs[0].module.parameters(), runs[2].module.parameters(), strict=True)
    ]
    assert all(same) and not all(other)
    assert runs[0].history == runs[1].history


def test_a_dp_model_learns_the_task(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    result = train_private(_mlp(), x, y, target_epsilon=3.0, epochs=5, seed=0, accountant="rdp")
    with torch.no_grad():
        acc = float((result.module(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert acc > 0.85


def test_batchnorm_is_replaced_with_a_message(
    cancer: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    x, y = cancer
    module = _mlp(norm=True)
    problems = validate_module(module)
    assert [(p.name, p.layer, p.fixable) for p in problems] == [("1", "BatchNorm1d", True)]
    opt = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.5)
    with caplog.at_level(logging.WARNING, logger="garrison.privacy"):
        private = make_private(module, opt, _loader(x, y), target_epsilon=1.0, epochs=1, accountant="rdp")
    assert "1 BatchNorm1d -> GroupNorm" in caplog.text
    assert private.replaced == (("1", "BatchNorm1d", "GroupNorm"),)
    assert isinstance(private.original_module[1], torch.nn.GroupNorm)
    assert isinstance(module[1], torch.nn.BatchNorm1d)  # the caller's module is not changed
    # the optimizer was rebuilt over the fixed module's parameters, with the same settings
    group = private.optimizer.original_optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["momentum"] == 0.5
    assert {id(p) for p in group["params"]} == {id(p) for p in private.original_module.parameters()}


def test_batchnorm_is_refused_without_fixing(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    module = _mlp(norm=True)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    with pytest.raises(IncompatibleModuleError, match=r"1 \(BatchNorm1d\)") as info:
        make_private(module, opt, _loader(x, y), target_epsilon=1.0, epochs=1, fix_modules=False)
    assert isinstance(info.value, InputError)
    assert [p.layer for p in info.value.problems] == ["BatchNorm1d"]


def test_a_module_in_eval_mode_is_refused(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    module = _mlp().eval()
    with pytest.raises(IncompatibleModuleError, match="training mode"):
        make_private(
            module, torch.optim.SGD(module.parameters(), lr=0.1), _loader(x, y), target_epsilon=1.0, epochs=1
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_epsilon": -1.0}, "`target_epsilon` must be > 0, got -1.0"),
        ({"target_epsilon": 1.0, "target_delta": 1.5}, "`target_delta` must be in"),
        ({"target_epsilon": 1.0, "epochs": 0}, "`epochs` must be >= 1"),
        ({"target_epsilon": 1.0, "accountant": "moments"}, "`accountant` must be one of"),
    ],
)
def test_bad_arguments_are_refused(
    cancer: tuple[np.ndarray, np.ndarray], kwargs: dict[str, object], message: str
) -> None:
    x, y = cancer
    module = _mlp()
    args = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make_private(module, torch.optim.SGD(module.parameters(), lr=0.1), _loader(x, y), **args)  # type: ignore[arg-type]


def test_missing_opacus_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opacus", None)
    with pytest.raises(MissingDependencyError) as info:
        validate_module(_mlp())
    assert info.value.extra == "privacy" and "garrison[privacy]" in str(info.value)


def test_importing_the_package_imports_no_framework() -> None:
    code = (
        "import sys, garrison.privacy as p; p.default_delta; "
        "print(sorted(m for m in ('torch', 'opacus', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_batchnorm_the_fixer_cannot_reach_is_refused_even_with_fixing(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    # an affine-free BatchNorm has no parameters, so Opacus neither validates nor replaces it, yet it still mixes
    # the samples of every batch
    x, y = cancer
    module = torch.nn.Sequential(
        torch.nn.Linear(30, 8), torch.nn.BatchNorm1d(8, affine=False), torch.nn.Linear(8, 2)
    )
    assert [(p.name, p.fixable) for p in validate_module(module)] == [("1", False)]
    with pytest.raises(IncompatibleModuleError, match=r"1 \(BatchNorm1d\)"):
        train_private(module, x, y, target_epsilon=1.0, epochs=1, accountant="rdp")


def test_what_opacus_refuses_is_an_input_error(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    # (an unreachable ε is refused the same way, but Opacus takes half a minute to double σ up to its limit)
    x, y = cancer
    module, other = _mlp(), _mlp()
    with pytest.raises(InputError, match="Module parameters are different than optimizer Parameters") as info:
        make_private(
            module,
            torch.optim.SGD(other.parameters(), lr=0.1),
            _loader(x, y),
            target_epsilon=1.0,
            epochs=1,
            accountant="rdp",
        )
    assert "ε=1, δ=0.001, 1 epochs of 9 batches" in str(info.value)
