"""Hugging Face repositories laid out on disk as the Hub serves them (config.json, tokenizer_config.json, the
repository's own modelling code), written by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.huggingface import (
    dangerous_calls,
    remote_code_refs,
    scan_huggingface_dir,
    scan_json,
)
from garrison.supplychain.result import ScanResult

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
EVIL_TEMPLATE = "{{ cycler.__init__.__globals__.os.getcwd() }}"
BERT_CONFIG = {
    "architectures": ["BertForSequenceClassification"],
    "model_type": "bert",
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 100,
    "torch_dtype": "float32",
    "transformers_version": "4.46.0",
}
REMOTE_CONFIG = {
    "architectures": ["TinyForCausalLM"],
    "model_type": "tiny",
    "auto_map": {
        "AutoConfig": "configuration_tiny.TinyConfig",
        "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM",
    },
}
CONFIGURATION = "from transformers import PretrainedConfig\n\nclass TinyConfig(PretrainedConfig):\n    model_type = 'tiny'\n"
MODELING_BENIGN = (
    "import torch\nfrom torch import nn\nfrom transformers import PreTrainedModel\n"
    "from .configuration_tiny import TinyConfig\n\n"
    "class TinyForCausalLM(PreTrainedModel):\n    config_class = TinyConfig\n"
    "    def __init__(self, config):\n        super().__init__(config)\n        self.lm = nn.Linear(4, 4)\n"
)
HELPERS_EVIL = "import subprocess as sp\n\ndef setup():\n    sp.run(['echo', 'harmless'])\n"


def write(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return directory


def scan_file(path: Path, location: str) -> ScanResult:
    ctx = ScanContext()
    ctx.begin_file(location, None)
    with Blob.from_path(path, location) as blob:
        scan_json(blob, ctx)
    return ctx.result()


def test_plain_repository_configs_are_clean(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "bert",
        {
            "config.json": BERT_CONFIG,
            "tokenizer_config.json": {
                "tokenizer_class": "BertTokenizer",
                "chat_template": CHATML,
                "model_max_length": 512,
            },
        },
    )
    assert scan_file(repo / "config.json", "bert/config.json") == ScanResult((), (), ())
    assert scan_file(repo / "tokenizer_config.json", "bert/tokenizer_config.json").findings == ()


def test_auto_map_with_inspected_benign_code_is_high(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "tiny",
        {
            "config.json": REMOTE_CONFIG,
            "configuration_tiny.py": CONFIGURATION,
            "modeling_tiny.py": MODELING_BENIGN,
        },
    )
    (finding,) = scan_file(repo / "config.json", "tiny/config.json").findings
    assert finding.rule_id == "GAR-SC-010" and finding.severity is Severity.HIGH
    assert finding.location == "tiny/config.json"
    evidence = finding.evidence_dict()
    assert evidence["python_files"] == ["configuration_tiny.py", "modeling_tiny.py"]
    assert evidence["missing_files"] == [] and evidence["dangerous_calls"] == []


def test_dangerous_code_reached_through_a_relative_import_is_critical(tmp_path: Path) -> None:
    modeling = MODELING_BENIGN + "from .helpers import setup\nsetup()\n"
    repo = write(
        tmp_path / "tiny",
        {
            "config.json": REMOTE_CONFIG,
            "configuration_tiny.py": CONFIGURATION,
            "modeling_tiny.py": modeling,
            "helpers.py": HELPERS_EVIL,
        },
    )
    (finding,) = scan_file(repo / "config.json", "tiny/config.json").findings
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence_dict()["dangerous_calls"] == [
        {"file": "helpers.py", "line": 4, "call": "subprocess.run", "what": "runs a command"}
    ]
    assert "subprocess.run in helpers.py:4" in finding.message


def test_missing_files_and_code_from_other_repositories(tmp_path: Path) -> None:
    config = {
        "auto_map": {
            "AutoModel": "org/other-repo--modeling_x.XModel",
            "AutoTokenizer": ["tokenization_x.XTokenizer", None],
        }
    }
    repo = write(tmp_path / "r", {"tokenizer_config.json": config})
    (finding,) = scan_file(repo / "tokenizer_config.json", "r/tokenizer_config.json").findings
    assert finding.severity is Severity.HIGH and "org/other-repo" in finding.message
    assert finding.evidence_dict()["missing_files"] == ["tokenization_x.py"]


def test_custom_pipelines_are_remote_code() -> None:
    refs = remote_code_refs({"custom_pipelines": {"text-classification": {"impl": "pipe.MyPipeline"}}})
    assert [(r.key, r.module_file) for r in refs] == [
        ("custom_pipelines.text-classification.impl", "pipe.py")
    ]


def test_dangerous_calls_resolve_aliases() -> None:
    source = (
        "import os\nfrom subprocess import Popen as P\nimport urllib.request\n"
        "os.system('true')\nP(['true'])\nurllib.request.urlopen('http://127.0.0.1')\neval('1')\nprint('ok')\n"
    )
    hits, relative = dangerous_calls(source, "x.py")
    assert [(h.call, h.line) for h in hits] == [
        ("os.system", 4),
        ("subprocess.Popen", 5),
        ("urllib.request.urlopen", 6),
        ("eval", 7),
    ]
    assert relative == []
    (hit,), _ = dangerous_calls("def (:\n", "bad.py")
    assert hit.call == "<unparseable>"


def test_malicious_chat_template_in_tokenizer_config(tmp_path: Path) -> None:
    config = {
        "chat_template": [
            {"name": "default", "template": CHATML},
            {"name": "tool_use", "template": EVIL_TEMPLATE},
        ]
    }
    repo = write(tmp_path / "r", {"tokenizer_config.json": config})
    (finding,) = scan_file(repo / "tokenizer_config.json", "r/tokenizer_config.json").findings
    assert finding.rule_id == "GAR-SC-009" and finding.severity is Severity.CRITICAL
    assert {i["template"] for i in finding.evidence_dict()["issues"]} == {"chat_template[tool_use]"}


def test_keras_json_config_is_analysed(tmp_path: Path) -> None:
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "Dense",
                    "config": {
                        "units": 2,
                        "activation": {"module": "os", "class_name": "function", "config": "getcwd"},
                    },
                }
            ]
        },
    }
    repo = write(tmp_path / "k", {"model.json": config})
    (finding,) = scan_file(repo / "model.json", "k/model.json").findings
    assert finding.rule_id == "GAR-SC-005" and "os.getcwd" in finding.message


def test_invalid_json_is_incomplete(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"config.json": '{"auto_map": '})
    result = scan_file(repo / "config.json", "r/config.json")
    assert result.findings == () and "JSON cannot be read" in result.incomplete[0].reason


def test_json_inside_an_archive_has_no_directory_to_inspect() -> None:
    ctx = ScanContext()
    scan_json(Blob.from_bytes(json.dumps(REMOTE_CONFIG).encode(), "m.zip!config.json", depth=1), ctx)
    (finding,) = ctx.result().findings
    assert finding.evidence_dict()["missing_files"] is None and finding.severity is Severity.HIGH


def test_directory_scanner_reads_template_files(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "r",
        {
            "config.json": BERT_CONFIG,
            "chat_template.jinja": "<s>" + CHATML,
            "additional_chat_templates/tool_use.jinja": "<s>" + EVIL_TEMPLATE,
            "additional_chat_templates/json_like.jinja": EVIL_TEMPLATE,  # left to scan_json
        },
    )
    ctx = ScanContext()
    scan_huggingface_dir(repo, "r", ctx)
    (finding,) = ctx.result().findings
    assert finding.location == "r/additional_chat_templates/tool_use.jinja"
    assert finding.severity is Severity.CRITICAL


def test_template_file_that_looks_like_json_is_analysed_as_a_template(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"chat_template.jinja": EVIL_TEMPLATE, "ok.jinja": CHATML})
    (finding,) = scan_file(repo / "chat_template.jinja", "r/chat_template.jinja").findings
    assert finding.rule_id == "GAR-SC-009" and finding.location == "r/chat_template.jinja"
    assert scan_file(repo / "ok.jinja", "r/ok.jinja") == ScanResult((), (), ())
