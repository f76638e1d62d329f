"""Differential-privacy training over Opacus: DP-SGD with a target (ε, δ) and a ledger read from the engine.

:func:`make_private` checks the module the Opacus way (:class:`opacus.validators.ModuleValidator`), replaces what
Opacus can fix (BatchNorm becomes GroupNorm) and says so, asks Opacus for the noise multiplier σ that spends exactly
the target ε over the planned epochs (``make_private_with_epsilon``), and returns the wrapped module, optimizer and
Poisson-sampling data loader. :meth:`PrivateTraining.ledger` reads σ, the clipping norm, the sample rate and the
steps taken from the optimizer and the accountant's history, and ε from ``engine.get_epsilon(δ)``: nothing is
recomputed here. :func:`train_private` is the whole loop for numpy arrays (what ``garrison train --dp`` runs).
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from garrison.core.errors import InputError
from garrison.core.metrics import Metric
from garrison.core.optional import import_optional
from garrison.core.optional import import_torch as _torch

__all__ = [
    "ACCOUNTANTS",
    "DPTrainingResult",
    "IncompatibleModuleError",
    "ModuleProblem",
    "PrivacyLedger",
    "PrivateTraining",
    "default_delta",
    "make_private",
    "train_private",
    "validate_module",
]

logger = logging.getLogger("garrison.privacy")

ACCOUNTANTS = ("prv", "rdp", "gdp")
Accountant = Literal["prv", "rdp", "gdp"]

# Opacus' advisory warnings that say nothing about the caller's privacy: secure RNG off (a documented choice, kept
# in the ledger as ``secure_mode``) and the RDP order search touching its largest α while σ is being searched.
# torch also warns, on every backward pass, that Opacus' full backward hooks fire on outputs when the inputs need
# no gradient: that is how per-sample gradients are captured, not a problem.
_OPACUS_ADVISORIES = (
    "Secure RNG turned off",
    "Optimal order is the largest alpha",
    "Full backward hook is firing when gradients are computed",
)


def _opacus() -> Any:
    _torch()
    return import_optional("opacus", extra="privacy")


@contextlib.contextmanager
def _quiet_opacus() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in _OPACUS_ADVISORIES:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def default_delta(n: int) -> float:
    """The δ used when none is given: the largest power of ten strictly below ``1/n`` (455 samples -> 1e-3,
    1000 -> 1e-4). δ must be well below ``1/n``: a mechanism that publishes one random record outright is
    (0, 1/n)-DP."""
    if n < 1:
        raise ValueError(f"`n` must be >= 1, got {n}")
    return 10.0 ** -len(str(int(n)))


@dataclass(frozen=True, slots=True)
class ModuleProblem:
    """One layer Opacus cannot train privately: its dotted ``name`` (``""`` for the root), its ``layer`` type,
    Opacus' ``reason`` (first sentence) and whether ``ModuleValidator.fix`` can replace it."""

    name: str
    layer: str
    reason: str
    fixable: bool

    def __str__(self) -> str:
        return f"{self.name or '<root>'} ({self.layer}): {self.reason}"


class IncompatibleModuleError(InputError):
    """The module has layers Opacus cannot train with DP and fixing them was not allowed: ``.problems``."""

    def __init__(self, problems: list[ModuleProblem]) -> None:
        self.problems = tuple(problems)
        names = "; ".join(str(p) for p in problems)
        fixable = any(p.fixable for p in problems)
        hint = "; pass fix_modules=True to replace them (BatchNorm -> GroupNorm)" if fixable else ""
        super().__init__(f"layers incompatible with differential privacy: {names}{hint}", field="module")


def _first_sentence(text: str) -> str:
    head = text.strip().split(". ")[0].strip()
    return head.rstrip(".")


def validate_module(module: Any) -> list[ModuleProblem]:
    """The layers of ``module`` Opacus cannot train with DP, named (``ModuleValidator.validate(strict=False)`` run
    layer by layer so each problem carries its layer's name). Empty when the module is ready. Does not raise."""
    opacus = _opacus()
    from opacus.utils.module_utils import trainable_modules

    validator = opacus.validators.ModuleValidator
    # Opacus only checks and fixes layers with trainable parameters; a frozen or affine-free BatchNorm still mixes
    # the samples of a batch, so it is reported too, as a problem the fixer does not reach
    trainable = {name for name, _ in trainable_modules(module)}
    problems: list[ModuleProblem] = []
    if not module.training:
        problems.append(ModuleProblem("", type(module).__name__, "model needs to be in training mode", False))
    for name, sub in module.named_modules():
        check = validator.VALIDATORS.get(type(sub))
        if check is None:
            continue
        for err in check(sub):
            fixable = type(sub) in validator.FIXERS and name in trainable
            problems.append(ModuleProblem(name, type(sub).__name__, _first_sentence(str(err)), fixable))
    return problems


def _replacements(before: Any, after: Any) -> list[tuple[str, str, str]]:
    old = {name: type(m).__name__ for name, m in before.named_modules()}
    return [
        (name, old[name], type(m).__name__)
        for name, m in after.named_modules()
        if name in old and old[name] != type(m).__name__
    ]


@dataclass(frozen=True, slots=True)
class PrivacyLedger:
    """What a DP training spent, as Opacus accounts it.

    ``noise_multiplier`` (σ) and ``max_grad_norm`` (C) come from the DP optimizer, ``sample_rate`` (q) and
    ``steps`` from the accountant's history, ``epsilon`` from ``engine.get_epsilon(delta)`` when the ledger was
    read. ``target_epsilon`` is what σ was chosen for; ``epsilon`` reaches it (within Opacus' tolerance) once all
    planned ``epochs`` ran. ``secure_mode`` is False when noise and sampling use torch's ordinary generator
    (fine for experiments; retrain with a cryptographic RNG before a guarantee matters).
    """

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    delta: float
    accountant: str
    epsilon: float
    target_epsilon: float | None = None
    epochs: int | None = None
    n_samples: int | None = None
    secure_mode: bool = False
    history: tuple[tuple[float, float, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
            "delta": self.delta,
            "accountant": self.accountant,
            "epsilon": self.epsilon,
            "target_epsilon": self.target_epsilon,
            "epochs": self.epochs,
            "n_samples": self.n_samples,
            "secure_mode": self.secure_mode,
            "history": [list(h) for h in self.history],
        }

    def epsilon_metric(self) -> Metric:
        """ε as a :class:`~garrison.core.metrics.Metric` (lower is more private)."""
        return Metric(
            name="epsilon",
            value=self.epsilon,
            n=self.n_samples,
            unit="",
            higher_is_better=False,
            description=f"(ε, δ={self.delta:g})-DP spent over {self.steps} DP-SGD steps ({self.accountant} accountant)",
        )


@dataclass
class PrivateTraining:
    """What :func:`make_private` returns: train with ``module``, ``optimizer`` and ``data_loader`` exactly as
    returned (any other data or optimizer voids the guarantee); read :meth:`ledger` at any time.

    ``module`` is Opacus' ``GradSampleModule``; ``original_module`` is the plain ``nn.Module`` it wraps (the fixed
    copy when layers were replaced, listed in ``replaced`` as ``(name, old type, new type)``). After training,
    ``module.to_standard_module()`` removes Opacus' hooks and returns it clean.
    """

    module: Any
    optimizer: Any
    data_loader: Any
    engine: Any
    delta: float
    target_epsilon: float
    epochs: int
    replaced: tuple[tuple[str, str, str], ...] = ()
    secure_mode: bool = False

    @property
    def original_module(self) -> Any:
        return getattr(self.module, "_module", self.module)

    def ledger(self) -> PrivacyLedger:
        """Read the ledger now (ε grows with every optimizer step)."""
        history = tuple((float(s), float(q), int(n)) for s, q, n in self.engine.accountant.history)
        steps = sum(n for _, _, n in history)
        if steps:
            with _quiet_opacus():
                epsilon = float(self.engine.get_epsilon(self.delta))
        else:
            epsilon = 0.0
        return PrivacyLedger(
            noise_multiplier=float(self.optimizer.noise_multiplier),
            max_grad_norm=float(self.optimizer.max_grad_norm),
            sample_rate=history[-1][1] if history else float(self.data_loader.sample_rate),
            steps=steps,
            delta=self.delta,
            accountant=str(self.engine.accountant.mechanism()),
            epsilon=epsilon,
            target_epsilon=self.target_epsilon,
            epochs=self.epochs,
            n_samples=len(self.data_loader.dataset),
            secure_mode=self.secure_mode,
            history=history,
        )


def _check_positive(name: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"`{name}` must be > 0, got {value!r}")


def make_private(
    module: Any,
    optimizer: Any,
    data_loader: Any,
    *,
    target_epsilon: float,
    target_delta: float | None = None,
    epochs: int,
    max_grad_norm: float = 1.0,
    accountant: Accountant = "prv",
    fix_modules: bool = True,
    poisson_sampling: bool = True,
    generator: Any = None,
    secure_mode: bool = False,
) -> PrivateTraining:
    """Make ``module``/``optimizer``/``data_loader`` train with (``target_epsilon``, ``target_delta``)-DP over
    ``epochs`` epochs (DP-SGD: per-sample clipping to ``max_grad_norm``, Gaussian noise σ chosen by Opacus).

    ``target_delta`` defaults to :func:`default_delta` of the dataset size. Layers Opacus cannot train are
    replaced when ``fix_modules`` (BatchNorm -> GroupNorm, logged as a warning on the ``garrison.privacy`` logger
    and listed in ``.replaced``; the optimizer is then rebuilt over the new parameters with its first parameter
    group's settings) and refused with :class:`IncompatibleModuleError` otherwise. ``generator`` (a seeded
    ``torch.Generator``) drives both the noise and the Poisson sampling, so a run is reproducible; ``None`` uses
    torch's global RNG. ``secure_mode`` needs ``torchcsprng``.
    """
    opacus = _opacus()
    torch = _torch()
    _check_positive("target_epsilon", target_epsilon)
    _check_positive("max_grad_norm", max_grad_norm)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"`epochs` must be >= 1, got {epochs!r}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"`accountant` must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}")
    n = len(data_loader.dataset)
    if n < 1:
        raise InputError("the training data is empty", field="data_loader")
    delta = default_delta(n) if target_delta is None else target_delta
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0 < delta < 1:
        raise ValueError(f"`target_delta` must be in (0, 1), got {delta!r}")

    replaced: list[tuple[str, str, str]] = []
    problems = validate_module(module)
    if problems:
        unfixable = [p for p in problems if not p.fixable]
        if unfixable or not fix_modules:
            raise IncompatibleModuleError(unfixable or problems)
        fixed = opacus.validators.ModuleValidator.fix(module)
        replaced = _replacements(module, fixed)
        optimizer = _rebuild_optimizer(optimizer, fixed)
        module = fixed
        logger.warning(
            "replaced layers Opacus cannot train with differential privacy: %s",
            ", ".join(f"{name} {old} -> {new}" for name, old, new in replaced)
            or "; ".join(str(p) for p in problems),  # fixed in place (e.g. InstanceNorm's running statistics)
        )
        left = validate_module(module)
        if left:
            raise IncompatibleModuleError(left)

    with _quiet_opacus():
        engine = opacus.PrivacyEngine(accountant=accountant, secure_mode=secure_mode)
        try:
            wrapped, dp_optimizer, dp_loader = engine.make_private_with_epsilon(
                module=module,
                optimizer=optimizer,
                data_loader=data_loader,
                target_epsilon=float(target_epsilon),
                target_delta=float(delta),
                epochs=int(epochs),
                max_grad_norm=float(max_grad_norm),
                poisson_sampling=poisson_sampling,
                noise_generator=generator,
            )
        except ValueError as exc:  # e.g. "The privacy budget is too low." from the σ search
            raise InputError(
                f"Opacus cannot make this training (ε={target_epsilon:g}, δ={delta:g}, {epochs} epochs of "
                f"{len(data_loader)} batches) private: {exc}",
                field="target_epsilon" if "budget" in str(exc) else None,
            ) from exc
    sampler = getattr(dp_loader, "batch_sampler", None)
    if isinstance(generator, torch.Generator) and hasattr(sampler, "generator"):
        # Opacus hands only its secure RNG to the Poisson sampler; with a seeded generator the sampling repeats too
        sampler.generator = generator
    return PrivateTraining(
        module=wrapped,
        optimizer=dp_optimizer,
        data_loader=dp_loader,
        engine=engine,
        delta=float(delta),
        target_epsilon=float(target_epsilon),
        epochs=epochs,
        replaced=tuple(replaced),
        secure_mode=secure_mode,
    )


def _rebuild_optimizer(optimizer: Any, module: Any) -> Any:
    if len(optimizer.param_groups) != 1:
        raise InputError(
            "cannot rebuild an optimizer with several parameter groups over the fixed module; fix the module "
            "first (opacus.validators.ModuleValidator.fix) and build the optimizer over it",
            field="optimizer",
        )
    settings = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    return type(optimizer)(module.parameters(), **settings)


@dataclass(frozen=True)
class DPTrainingResult:
    """The trained plain ``module`` (in eval mode; the fixed copy when layers were replaced), the ``ledger`` read
    after the last step, the per-epoch ``history`` (``epoch``, mean training ``loss``) and ``replaced`` layers."""

    module: Any
    ledger: PrivacyLedger
    history: list[dict[str, float]] = field(default_factory=list)
    replaced: tuple[tuple[str, str, str], ...] = ()


def train_private(
    module: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    target_epsilon: float,
    target_delta: float | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 0.1,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    accountant: Accountant = "prv",
    fix_modules: bool = True,
    optimizer: Literal["sgd", "adam"] = "sgd",
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> DPTrainingResult:
    """Train a torch classifier on ``x`` (float features) and integer labels ``y`` with DP-SGD at
    (``target_epsilon``, ``target_delta``) over ``epochs`` epochs of expected batch size ``batch_size``.

    Cross-entropy loss; SGD (momentum 0.9) or Adam at ``lr``. Deterministic under ``seed``: noise and Poisson
    sampling use a generator seeded from it, and the caller's global torch RNG state is left untouched.
    ``progress(epoch, row)`` is called after each epoch.
    """
    torch = _torch()
    _opacus()
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"`optimizer` must be sgd or adam, got {optimizer!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
    _check_positive("lr", lr)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise InputError(
            f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}", field="x"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError("labels must be integers 0..n_classes-1", field="y")

    with torch.random.fork_rng(devices=[]), _quiet_opacus():
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=min(int(batch_size), len(x)), generator=generator
        )
        module.train()
        params = module.parameters()
        opt = (
            torch.optim.SGD(params, lr=lr, momentum=0.9)
            if optimizer == "sgd"
            else torch.optim.Adam(params, lr=lr)
        )
        private = make_private(
            module,
            opt,
            loader,
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            epochs=epochs,
            max_grad_norm=max_grad_norm,
            accountant=accountant,
            fix_modules=fix_modules,
            generator=generator,
        )
        history: list[dict[str, float]] = []
        for epoch in range(1, epochs + 1):
            total, count = 0.0, 0
            for xb, yb in private.data_loader:
                private.optimizer.zero_grad()
                # Poisson sampling can draw an empty batch: it still takes a (noise-only) step, and a mean over
                # no samples would be nan
                reduction = "mean" if len(xb) else "sum"
                loss = torch.nn.functional.cross_entropy(private.module(xb), yb, reduction=reduction)
                loss.backward()
                private.optimizer.step()
                total += float(loss.detach()) * len(xb)
                count += len(xb)
            # ε is read once at the end: the PRV accountant takes a good fraction of a second per reading
            row = {"epoch": float(epoch), "loss": total / count if count else math.nan}
            history.append(row)
            if progress is not None:
                progress(epoch, row)
        ledger = private.ledger()
    # drop Opacus' hooks and per-sample gradients: the module trains and predicts as a plain one again
    to_standard = getattr(private.module, "to_standard_module", None)
    trained = to_standard() if to_standard is not None else private.original_module
    trained.eval()
    return DPTrainingResult(module=trained, ledger=ledger, history=history, replaced=private.replaced)
