"""``fl.yaml``: one federated-learning experiment (data, clients, attack, strategies, training).

Parsed with ruamel.yaml through Garrison's declared-spec validator, so unknown keys and bad values raise
:class:`~garrison.core.errors.ConfigError` naming the file, the dotted key and the line. Cross-field rules (fewer
malicious than clients, Bulyan's ``n ≥ 4f + 3``, a known strategy name) are checked here too, naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from garrison.core.errors import ConfigError
from garrison.core.schema_spec import Spec, load_yaml, validate
from garrison.federated.attacks import ATTACKS

__all__ = [
    "BASE_STRATEGIES",
    "FL_SPEC",
    "WRAPPERS",
    "AttackConfig",
    "FLConfig",
    "ScreeningConfig",
    "load_fl_config",
    "parse_fl_config",
]

BASE_STRATEGIES = ("fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan")
WRAPPERS = ("screened", "dp-fixed", "dp-adaptive")

FL_SPEC = Spec(
    "map",
    fields={
        "version": Spec("int", default=1, choices=(1,)),
        "seed": Spec("int", default=0, ge=0),
        "data": Spec(
            "map",
            fields={
                "source": Spec(
                    "str", default="digits", doc="'digits' (sklearn) or an .npz with arrays x and y"
                ),
                "test_fraction": Spec("float", default=0.25, gt=0, le=0.9),
                "partition": Spec("str", default="dirichlet", choices=("iid", "dirichlet")),
                "alpha": Spec("float", default=0.5, gt=0, doc="Dirichlet concentration (smaller: more skew)"),
            },
        ),
        "clients": Spec("int", default=12, ge=2, le=1000),
        "malicious": Spec("int", default=2, ge=0),
        "attack": Spec(
            "map",
            fields={
                "kind": Spec("str", default="none", choices=ATTACKS),
                "scale": Spec(
                    "float", default=None, gt=0, doc="boost of scaling/backdoor (default: clients)"
                ),
                "z": Spec("float", default=None, gt=0, doc="ALIE shift (default: the paper's z_max)"),
                "epsilon": Spec("float", default=0.5, gt=0, doc="IPM strength"),
                "target": Spec("int", default=0, ge=0, doc="backdoor target class"),
                "poison_fraction": Spec("float", default=0.5, gt=0, le=1, doc="triggered share of a batch"),
                "anomaly_weight": Spec("float", default=0.3, ge=0, le=1, doc="constrain-and-scale α"),
            },
        ),
        "strategies": Spec("list", items=Spec("str"), default=["fedavg", "fedmedian", "screened:fedavg"]),
        "rounds": Spec("int", default=10, ge=1, le=1000),
        "local_epochs": Spec("int", default=2, ge=1, le=100),
        "lr": Spec("float", default=0.5, gt=0),
        "batch_size": Spec("int", default=32, ge=1),
        "model": Spec("str", default="mlp", choices=("mlp", "logreg")),
        "hidden": Spec("int", default=32, ge=1),
        "trimmed_beta": Spec("float", default=0.2, gt=0, le=0.49),
        "screening": Spec(
            "map",
            fields={
                "norm_factor": Spec("float", default=1.5, gt=0),
                "z": Spec("float", default=4.0, gt=0),
                "min_distance": Spec("float", default=0.1, ge=0),
                "coordinate_z": Spec("float", default=4.0, gt=0, nullable=True),
            },
        ),
        "dp": Spec(
            "map",
            fields={
                "noise_multiplier": Spec("float", default=0.1, ge=0),
                "clipping_norm": Spec("float", default=1.0, gt=0),
            },
        ),
        "cpus_per_client": Spec("float", default=1.0, gt=0),
    },
)


@dataclass(frozen=True)
class AttackConfig:
    kind: str = "none"
    scale: float | None = None
    z: float | None = None
    epsilon: float = 0.5
    target: int = 0
    poison_fraction: float = 0.5
    anomaly_weight: float = 0.3


@dataclass(frozen=True)
class ScreeningConfig:
    norm_factor: float = 1.5
    z: float = 4.0
    min_distance: float = 0.1
    coordinate_z: float | None = 4.0


@dataclass(frozen=True)
class FLConfig:
    """A parsed experiment. ``strategies`` are names such as ``fedmedian`` or ``screened:multikrum``."""

    seed: int = 0
    source: str = "digits"
    test_fraction: float = 0.25
    partition: str = "dirichlet"
    alpha: float = 0.5
    clients: int = 12
    malicious: int = 2
    attack: AttackConfig = field(default_factory=AttackConfig)
    strategies: tuple[str, ...] = ("fedavg", "fedmedian", "screened:fedavg")
    rounds: int = 10
    local_epochs: int = 2
    lr: float = 0.5
    batch_size: int = 32
    model: str = "mlp"
    hidden: int = 32
    trimmed_beta: float = 0.2
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    noise_multiplier: float = 0.1
    clipping_norm: float = 1.0
    cpus_per_client: float = 1.0
    path: str | None = None

    def with_seed(self, seed: int) -> FLConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategies"] = list(self.strategies)
        return out


def parse_fl_config(data: Any, *, path: str | Path | None = None) -> FLConfig:
    """An :class:`FLConfig` from parsed YAML (a mapping); :class:`ConfigError` naming the key on any problem."""
    v = validate(data if data is not None else {}, FL_SPEC, path=path)
    n, m = v["clients"], v["malicious"]
    if v["attack"]["kind"] == "none":
        m = 0  # nobody attacks: every client is honest
    if m >= n / 2:
        raise ConfigError(
            f"`malicious` must be less than half of `clients` ({n}), got {m}", path=path, key="malicious"
        )
    if v["attack"]["kind"] != "none" and m == 0:
        raise ConfigError("an attack needs `malicious` >= 1", path=path, key="attack.kind")
    strategies = v["strategies"]
    if not strategies:
        raise ConfigError("`strategies` must name at least one strategy", path=path, key="strategies")
    for i, name in enumerate(strategies):
        key = f"strategies[{i}]"
        wrapper, _, base = name.rpartition(":")
        if base not in BASE_STRATEGIES:
            raise ConfigError(
                f"unknown strategy {base!r} (expected one of: {', '.join(BASE_STRATEGIES)})",
                path=path,
                key=key,
            )
        for w in filter(None, wrapper.split(":")):
            if w not in WRAPPERS:
                raise ConfigError(
                    f"unknown wrapper {w!r} (expected one of: {', '.join(WRAPPERS)})", path=path, key=key
                )
        if base == "bulyan" and n < 4 * m + 3:
            raise ConfigError(
                f"bulyan needs clients >= 4 * malicious + 3 = {4 * m + 3}, got {n}", path=path, key=key
            )
    if len(set(strategies)) != len(strategies):
        raise ConfigError("`strategies` lists a strategy twice", path=path, key="strategies")
    a = v["attack"]
    return FLConfig(
        seed=v["seed"],
        source=v["data"]["source"],
        test_fraction=v["data"]["test_fraction"],
        partition=v["data"]["partition"],
        alpha=v["data"]["alpha"],
        clients=n,
        malicious=m,
        attack=AttackConfig(**a),
        strategies=tuple(strategies),
        rounds=v["rounds"],
        local_epochs=v["local_epochs"],
        lr=v["lr"],
        batch_size=v["batch_size"],
        model=v["model"],
        hidden=v["hidden"],
        trimmed_beta=v["trimmed_beta"],
        screening=ScreeningConfig(**v["screening"]),
        noise_multiplier=v["dp"]["noise_multiplier"],
        clipping_norm=v["dp"]["clipping_norm"],
        cpus_per_client=v["cpus_per_client"],
        path=str(path) if path is not None else None,
    )


def load_fl_config(path: str | Path) -> FLConfig:
    """Read and validate an ``fl.yaml``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=p) from None
    return parse_fl_config(load_yaml(text, path=p), path=p)
