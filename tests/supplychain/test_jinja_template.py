from __future__ import annotations

import pytest

from garrison.core.severity import Severity
from garrison.supplychain.context import ScanContext
from garrison.supplychain.jinja_template import TemplateIssue, analyze_template, report_template_issues

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
    " + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
TOOLS = """{%- set ns = namespace(found=false, last_query_index=messages|length - 1) -%}
{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}
{%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}{{- "\\n</tools><|im_end|>\\n" }}{%- endif %}
{%- for message in messages[1:] %}
  {%- if message.role == "assistant" and message.tool_calls is defined %}
    {%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}
      {%- set tool_call = tool_call.function %}{%- endif %}
      {{- '<tool_call>\\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}
      {%- if loop.last %}{% break %}{% endif %}
    {%- endfor %}
  {%- elif message.role == "assistant" %}{% generation %}{{- message.content|string }}{% endgeneration %}
  {%- else %}{{- '<|im_start|>' + message.role + '\\n' + message['content'] + '<|im_end|>\\n' }}
  {%- set ns.found = true %}{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""


@pytest.mark.parametrize(
    "template", [CHATML, LLAMA3, MISTRAL, TOOLS], ids=["chatml", "llama3", "mistral", "tools"]
)
def test_benign_chat_templates_have_no_issue(template: str) -> None:
    assert analyze_template(template) == []


@pytest.mark.parametrize(
    ("template", "severity", "fragment"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", Severity.CRITICAL, "'__class__' reaches Python"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", Severity.CRITICAL, "'__globals__'"),
        ("{{ ''|attr('__class__') }}", Severity.CRITICAL, "|attr of '__class__'"),
        ("{% set a = 'x' %}{{ ''|attr(a) }}", Severity.CRITICAL, "|attr with a name computed"),
        (
            "{{ ''[('_' * 2) ~ 'class' ~ ('_' * 2)] }}",
            Severity.CRITICAL,
            "item name computed by string building",
        ),
        ("{{ '%c%c'|format(95, 95) }}", Severity.CRITICAL, "'%c' formatting"),
        ("{{ '%c' % 95 }}", Severity.CRITICAL, "'%c' formatting"),
        ("{{ lipsum['__globals__'] }}", Severity.CRITICAL, "item '__globals__'"),
        ("{{ messages|map(attribute='__class__')|list }}", Severity.CRITICAL, "|map of '__class__'"),
        ("{{ messages|selectattr('__class__')|list }}", Severity.CRITICAL, "|selectattr of '__class__'"),
        ("{{ x.gi_frame.f_globals }}", Severity.CRITICAL, "'gi_frame'"),
        ("{{ self._TemplateReference__context }}", Severity.HIGH, "private name"),
        (
            "{{ '\\x5f\\x5fbuiltins\\x5f\\x5f' }}",
            Severity.HIGH,
            "string '__builtins__' names Python internals",
        ),
        ("{{ config.os }}", Severity.HIGH, "'os' leads out"),
    ],
)
def test_constructs_reaching_python_internals(template: str, severity: Severity, fragment: str) -> None:
    issues = analyze_template(template)
    assert issues, template
    worst = max(issues, key=lambda i: i.severity.rank)
    assert worst.severity is severity
    assert any(fragment in i.message for i in issues), [i.message for i in issues]
    assert all(i.line == 1 for i in issues)


def test_unparseable_template_is_a_medium_issue_with_its_line() -> None:
    (issue,) = analyze_template("{% for m in messages %}\n{{ m.content }")
    assert issue.severity is Severity.MEDIUM and issue.line == 2
    assert issue.message.startswith("template cannot be parsed")


def test_deeply_nested_template_does_not_crash() -> None:
    issues = analyze_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert all(i.severity is Severity.MEDIUM for i in issues)


def test_report_is_one_finding_with_the_worst_severity() -> None:
    ctx = ScanContext()
    report_template_issues(
        ctx,
        "tok.json",
        {
            "default": [TemplateIssue(Severity.HIGH, "x", 1)],
            "tool_use": [TemplateIssue(Severity.CRITICAL, "y", 3)],
        },
        source="tokenizer_config.json",
    )
    (finding,) = ctx.result().findings
    assert finding.rule_id == "GAR-SC-009" and finding.severity is Severity.CRITICAL
    assert finding.message == (
        "Chat template in tokenizer_config.json reaches Python internals: "
        "x (default, line 1); y (tool_use, line 3)"
    )
    report_template_issues(ctx, "t.json", {"a": []}, source="x")
    assert len(ctx.result().findings) == 1
