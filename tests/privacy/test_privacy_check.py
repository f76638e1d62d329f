"""The privacy check: a non-private model claiming ε = 1 is caught; an honestly DP-trained one is not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from garrison.adapters import SklearnClassifier  # noqa: E402
from garrison.adapters.base import InputSpec  # noqa: E402
from garrison.adapters.torch_model import TorchClassifier  # noqa: E402
from garrison.audit.checks.privacy import PrivacyCheck  # noqa: E402
from garrison.core.results import CheckStatus  # noqa: E402
from garrison.core.severity import Severity  # noqa: E402
from garrison.data import Dataset, infer_array_schema  # noqa: E402
from garrison.testing import assert_conforms, make_context  # noqa: E402

EPOCHS = 100


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: threads only contend on a shared machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def noisy_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits with 30 % of the labels randomised: a model that memorises its training set shows it."""
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    y = np.where(rng.random(len(x)) < 0.3, rng.integers(0, 10, len(x)), d.target).astype(np.int64)
    perm = rng.permutation(len(x))
    return x, y, perm[:600], perm[600:]


def _opacus_model(
    x: np.ndarray, y: np.ndarray, *, noise: float | None, epsilon: float | None = None
) -> tuple[TorchClassifier, list[tuple[float, float, int]]]:
    from opacus import PrivacyEngine

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=50)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus' notes on secure RNG and the optimizer
        engine = PrivacyEngine(accountant="prv")
        if epsilon is None:
            net, opt, loader = engine.make_private(module=net, optimizer=opt, data_loader=loader,
                                                   noise_multiplier=noise, max_grad_norm=5.0)  # fmt: skip
        else:
            net, opt, loader = engine.make_private_with_epsilon(
                module=net, optimizer=opt, data_loader=loader, target_epsilon=epsilon, target_delta=1e-5,
                epochs=EPOCHS, max_grad_norm=5.0,
            )  # fmt: skip
        for _ in range(EPOCHS):
            for xb, yb in loader:
                if len(xb):
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(net(xb), yb).backward()
                    opt.step()
    module = net._module.eval()
    return TorchClassifier(module, input_spec=InputSpec((64,)), n_classes=10), list(engine.accountant.history)


def _context(model: object, x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> object:
    schema = infer_array_schema(x)
    return make_context(model, Dataset("test", x[te], y[te], schema), Dataset("train", x[tr], y[tr], schema))  # type: ignore[arg-type]


def test_conforms() -> None:
    assert_conforms(PrivacyCheck)


def test_noiseless_model_claiming_epsilon_one_is_critical(noisy_digits: tuple) -> None:
    x, y, tr, te = noisy_digits
    model, history = _opacus_model(x[tr], y[tr], noise=0.0)
    assert history[0][0] == 0.0
    result = PrivacyCheck(claimed_epsilon=1.0, claimed_delta=1e-5, reference_epochs=EPOCHS).run(
        _context(model, x, y, tr, te)  # type: ignore[arg-type]
    )
    assert result.status is CheckStatus.OK
    by_rule = {f.rule_id: f for f in result.findings}
    assert "GAR-PV-002" in by_rule and by_rule["GAR-PV-002"].severity is Severity.CRITICAL
    evidence = {e.key: e for e in by_rule["GAR-PV-002"].evidence}
    assert evidence["tpr_low"].value > evidence["max_tpr"].value
    exposed = {e.key: e for e in by_rule["GAR-PV-001"].evidence}
    assert exposed["most_exposed_train_rows"].sensitive
    assert all(0 <= r < len(tr) for r in exposed["most_exposed_train_rows"].value)
    metrics = {m.name: m for m in result.metrics}
    assert metrics["reference_models"].value == 8
    assert metrics["dp_bound_margin"].value > 0
    assert result.figures[0].svg is not None and "rmia-offline" in result.figures[0].svg
    # the same history through the PRV accountant: no noise, no bound, no finding
    history_result = PrivacyCheck(accountant_history=[list(h) for h in history], reference_models=0).run(
        _context(model, x, y, tr, te)  # type: ignore[arg-type]
    )
    assert "GAR-PV-002" not in {f.rule_id for f in history_result.findings}


def test_honest_epsilon_one_model_is_not_flagged(noisy_digits: tuple) -> None:
    x, y, tr, te = noisy_digits
    model, history = _opacus_model(x[tr], y[tr], noise=None, epsilon=1.0)
    assert history[0][0] > 1.0
    ctx = _context(model, x, y, tr, te)
    result = PrivacyCheck(claimed_epsilon=1.0, claimed_delta=1e-5, reference_epochs=EPOCHS).run(ctx)  # type: ignore[arg-type]
    assert result.status is CheckStatus.OK
    assert "GAR-PV-002" not in {f.rule_id for f in result.findings}
    assert {m.name: m for m in result.metrics}["dp_bound_margin"].value < 0
    accounted = PrivacyCheck(accountant_history=[list(h) for h in history], reference_models=0).run(ctx)  # type: ignore[arg-type]
    assert "GAR-PV-002" not in {f.rule_id for f in accounted.findings}


def test_sklearn_model_gets_reference_attacks_and_skips_without_train() -> None:
    d = load_digits()
    x, y = d.data / 16.0, d.target
    model = SklearnClassifier(LogisticRegression(max_iter=500).fit(x[:300], y[:300]))
    schema = infer_array_schema(x)
    ctx = make_context(
        model, Dataset("test", x[300:700], y[300:700], schema), Dataset("train", x[:300], y[:300], schema)
    )
    result = PrivacyCheck(reference_models=2).run(ctx)
    names = {m.name for m in result.metrics}
    assert {"threshold.auc", "lira_offline.tpr@1%fpr", "rmia_offline.tpr@0.1%fpr"} <= names
    assert {m.name: m for m in result.metrics}["n_nonmembers"].value == 400
    online = PrivacyCheck(reference_models=2, online=True).run(ctx)
    assert {"lira_online.auc", "rmia_online.tpr@1%fpr"} <= {m.name for m in online.metrics}
    skipped = PrivacyCheck().run(make_context(model, Dataset("test", x[300:700], y[300:700], schema)))
    assert skipped.status is CheckStatus.SKIPPED


def test_bad_history_is_an_error_result() -> None:
    ctx = make_context()
    result = PrivacyCheck(accountant_history=[[1.0, 0.1]]).run(ctx)
    if ctx.train is not None:
        assert result.status is CheckStatus.ERROR and "accountant_history" in (result.error or "")


def test_cli_privacy_audit_on_a_config_with_a_pipeline(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import pandas as pd
    import skops.io
    import typer
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from typer.testing import CliRunner

    from garrison.cli import privacy_cmd

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"income": rng.normal(50, 10, n).round(2), "age": rng.integers(18, 80, n),
                          "region": rng.choice(["north", "south", "east"], n)})  # fmt: skip
    frame["label"] = ((frame["income"] > 50) ^ (frame["region"] == "east")).astype(int)
    train, test = frame.iloc[:150], frame.iloc[150:]
    pipe = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["income", "age"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])]),
        LogisticRegression(max_iter=500),
    )  # fmt: skip
    pipe.fit(train.drop(columns="label"), train["label"])
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    skops.io.dump(pipe, tmp_path / "model.skops")
    (tmp_path / "garrison.yaml").write_text(
        "project: privacy-cli\nmodel: {name: credit, path: model.skops}\ndata:\n"
        "  train: {path: train.csv, label: label}\n  test: {path: test.csv, label: label}\n"
        "checks:\n  privacy: {reference_models: 4, claimed_epsilon: 8.0}\nreport: {output: out}\n"
    )
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.command("noop")(lambda: None)
    privacy_cmd.register(app)
    out = CliRunner().invoke(app, ["privacy", "audit", "--config", "garrison.yaml", "--format", "json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output[out.output.index("{") :])
    assert payload["status"] == "ok"
    assert {r["method"] for r in payload["attacks"]} == {"threshold", "lira-offline", "rmia-offline"}
    assert payload["metrics"]["n_members"]["value"] == 150
    assert "GAR-PV-002" not in {f["rule_id"] for f in payload["findings"]}
    text = CliRunner().invoke(app, ["privacy", "audit", "--config", "garrison.yaml"])
    assert text.exit_code == 0 and "lira-offline" in text.output


def test_attribute_inference_and_extraction_options() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    n = 1000
    others = rng.normal(size=(n, 3))
    s = rng.integers(0, 2, n).astype(np.float64)
    y = ((others[:, 0] > 0) ^ (s == 1)).astype(np.int64)
    x = np.column_stack([others[:, :1], s, others[:, 1:]])
    model = SklearnClassifier(RandomForestClassifier(n_estimators=30, random_state=0).fit(x[:600], y[:600]))
    schema = infer_array_schema(x)
    ctx = make_context(
        model, Dataset("test", x[600:], y[600:], schema), Dataset("train", x[:600], y[:600], schema)
    )
    check = PrivacyCheck(reference_models=0, sensitive_feature="f1", extraction_queries=[20, 150])
    result = check.run(ctx)
    assert result.status is CheckStatus.OK
    metrics = {m.name: m for m in result.metrics}
    assert metrics["attribute.accuracy"].ci_low > metrics["attribute.features_only"].ci_high
    assert "GAR-PV-003" in {f.rule_id for f in result.findings}
    assert metrics["extraction.fidelity@150"].value > metrics["extraction.fidelity@20"].value
    missing = PrivacyCheck(reference_models=0, sensitive_feature="nope").run(ctx)
    assert missing.status is CheckStatus.ERROR and "nope" in (missing.error or "")
