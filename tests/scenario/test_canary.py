"""Canaries: scenarios and expressions that try every route to code execution we know of.

Each payload would create a marker file if it ran. Each must be refused as the user's mistake
(ScenarioError, exit 2; ExprError for a bare expression) and the marker must not exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.scenario.expr import ExprError, compile_expr

BASE = """\
name: canary
start: 2024-01
months: 3
parameters:
  p: 1
stocks:
  a: {unit: t, kind: source}
  b: {unit: t}
flows:
  f: {from: a, to: b, rate: p}
"""

# Python code that would create MARKER in the working directory.
TOUCH = "__import__('os').system('touch MARKER')"
OPEN = "open('MARKER', 'w').write('x')"

YAML_PAYLOADS = {
    "apply_os_system": "name: !!python/object/apply:os.system ['touch MARKER']\n",
    "apply_subprocess": "name: !!python/object/apply:subprocess.call [[touch, MARKER]]\n",
    "apply_on_mapping": "stocks: !!python/object/apply:os.system {args: ['touch MARKER']}\n",
    "python_name": "name: !!python/name:os.system\n",
    "python_module": "name: !!python/module:os\n",
    "object_new": "name: !!python/object/new:os.system ['touch MARKER']\n",
    "object_state": "name: !!python/object:pathlib.PosixPath {}\n",
    "tag_directive": (
        "%TAG !py! tag:yaml.org,2002:python/object/apply:\n---\n"
        + BASE.replace("name: canary", "name: !py!os.system ['touch MARKER']")
    ),
    "verbatim_tag": "name: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch MARKER']\n",
    "tag_as_key": "? !!python/object/apply:os.system ['touch MARKER']\n: 1\n",
    "tag_in_merge": "<<: !!python/object/apply:os.system ['touch MARKER']\n",
    "tag_in_list": "record: [!!python/object/apply:os.system ['touch MARKER']]\n",
    "local_tag": "name: !os.system 'touch MARKER'\n",
    "tag_via_merge_alias": (
        "x: &evil !!python/object/apply:os.system {args: ['touch MARKER']}\n<<: *evil\n"
    ),
}

EXPRESSIONS = {
    "import": TOUCH,
    "dunder_bases": "().__class__.__bases__[0].__subclasses__()",
    "dunder_name": "__builtins__",
    "getattr": f"getattr(__builtins__, 'exec')(\"{OPEN}\")",
    "eval": f'eval("{TOUCH}")',
    "exec": f'exec("{OPEN}")',
    "compile": f"compile(\"{OPEN}\", 'x', 'exec')",
    "format_string": "'{0.__class__}'.format(1)",
    "f_string": f'f"{{{TOUCH}}}"',
    "lambda": f"(lambda: {TOUCH})()",
    "open": OPEN,
    "walrus": "(os := __import__('os')) and os.system('touch MARKER')",
    "comprehension": f"[{TOUCH} for _ in [1]]",
    "generator": f"min(({TOUCH} for _ in [1]), 1)",
    "flow_dunder": "flow.__class__",
    "flow_chain": "flow.f.__class__.__init__.__globals__",
    "subscript_globals": "globals()['__builtins__']",
    "breakpoint": "breakpoint()",
    "fullwidth_open": "ｏｐｅｎ('MARKER', 'w')",
    "kwargs": "min(1, 2, key=exec)",
    "starred": "max(*[1, 2])",
    "decorator_like": "clip.__call__(1, 2, 3)",
}

# Where an expression may appear in a scenario.
PLACES = {
    "rate": lambda e: BASE.replace("rate: p", f"rate: {_quote(e)}"),
    "initial": lambda e: BASE.replace("b: {unit: t}", f"b: {{unit: t, initial: {_quote(e)}}}"),
    "variable": lambda e: BASE + f"variables:\n  v: {_quote(e)}\n",
    "event_at": lambda e: (
        BASE + f"state: {{s: 1}}\nevents:\n  e: {{at: {_quote(e)}, set: {{s: 0}}}}\n"
    ),
    "outcome": lambda e: BASE + f"outcomes:\n  o: {{of: {_quote(e)}, stat: final}}\n",
    "record": lambda e: BASE + f"record: [{_quote(e)}]\n",
}


def _quote(expr: str) -> str:
    """The expression as a YAML double-quoted scalar."""
    return '"' + expr.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    runner = CliRunner()
    for command in (["validate"], ["show"], ["show", "--format", "json"]):
        result = runner.invoke(cli, [*command, str(path)])
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output
        assert not (tmp_path / "MARKER").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]


@pytest.mark.parametrize("name", sorted(YAML_PAYLOADS))
def test_yaml_payload_is_refused(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refused(tmp_path, monkeypatch, YAML_PAYLOADS[name] + BASE.split("\n", 1)[1])


def test_yaml_payload_in_an_extended_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "_evil_base.yaml").write_text(YAML_PAYLOADS["apply_os_system"])
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "scenario.yaml"
    path.write_text("extends: _evil_base.yaml\n" + BASE)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_payload_is_refused(
    name: str, place: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refused(tmp_path, monkeypatch, PLACES[place](EXPRESSIONS[name]))


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_payload_fails_to_compile(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExprError):
        compile_expr(EXPRESSIONS[name], {"p": "parameter"}, {"f"})
    assert not (tmp_path / "MARKER").exists()


def test_generated_code_has_no_builtins() -> None:
    """Even the compiled function's globals hold no builtins: a second wall behind the parser."""
    expr = compile_expr("p * 2", {"p": "parameter"})
    assert expr.fn.__globals__["__builtins__"] == {}
    assert expr({"p": np.array([1.0, 2.0])}).tolist() == [2.0, 4.0]


def test_hostile_names_never_reach_generated_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are scenario keys; a key that is code must be refused, not spliced into source."""
    evil = "x'] or __import__('os').system('touch MARKER') or ns['"
    text = BASE.replace("  p: 1", f"  {_quote(evil)}: 1").replace("rate: p", "rate: 1")
    _refused(tmp_path, monkeypatch, text)
