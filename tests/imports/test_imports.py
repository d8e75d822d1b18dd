"""`sim import` against the community's suite: each committed SDXorg test model is imported,
run once, and every recorded stock and variable matched to the reference output Vensim (or
Stella) wrote, over the whole trajectory; the models that use what has no translation are
refused, each construct named with its line. suite.yaml says which is which."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sim.errors import ScenarioError

pytest.importorskip("pysd")  # the `import` extra; CI installs it with `.[test]`

from sim.cli.app import cli
from sim.imports import translate
from tests.imports.reference import MODELS, mismatches, model_file, run

SUITE = yaml.safe_load((Path(__file__).parent / "suite.yaml").read_text())
MATCH = sorted(c for c, spec in SUITE.items() if spec["expect"] == "match")
REFUSED = sorted(c for c, spec in SUITE.items() if spec["expect"] == "refused")


def test_the_suite_lists_every_committed_model():
    folders = {p.name for p in MODELS.iterdir() if p.is_dir()}
    assert folders == set(SUITE)
    assert len(MATCH) >= 25


@pytest.mark.parametrize("case", MATCH)
def test_matches_the_reference(case: str, tmp_path: Path) -> None:
    result = run(case, tmp_path)
    problems, matched, unsaved = mismatches(case, result, SUITE[case].get("until"))
    assert not problems, "\n".join(problems)
    assert not unsaved, f"recorded but not in the reference: {unsaved}"
    assert matched == len(result.series) > 0


@pytest.mark.parametrize("case", REFUSED)
def test_refuses_what_it_cannot_translate(case: str) -> None:
    path = model_file(case)
    with pytest.raises(ScenarioError) as caught:
        translate(path)
    problems = caught.value.problems
    text = "\n".join(str(p) for p in problems)
    for construct in SUITE[case]["constructs"]:
        assert construct in text, f"{construct!r} not named in:\n{text}"
    for problem in problems:
        assert problem.place is not None and problem.place.file == str(path), str(problem)
        assert problem.place.line >= 1


def test_stocks_vensim_lets_go_negative_are_balances(tmp_path: Path) -> None:
    scenario = yaml.safe_load(translate(model_file("simple_harmonic_oscillator")).text)
    kinds = {name: stock["kind"] for name, stock in scenario["stocks"].items()}
    assert kinds == {
        "position": "balance",
        "speed": "balance",
        "outside_m": "balance",  # one counterpart per unit, so every flow joins one unit
        "outside_m_s": "balance",
    }
    assert all(flow.get("two_way") for flow in scenario["flows"].values())
    # a stock that only receives a non-negative inflow stays a plain stock
    stocks = yaml.safe_load(translate(model_file("subscript_1d_arrays")).text)["stocks"]
    assert stocks["stock_a"]["kind"] == "stock"


def test_names_units_and_sources(tmp_path: Path) -> None:
    scenario = yaml.safe_load(translate(model_file("teacup")).text)
    assert scenario["step"] == 0.125 and scenario["months"] == 30
    room = scenario["parameters"]["room_temperature"]
    assert room["unit"] == "Degrees Fahrenheit"
    assert room["source"] == "imported from teacup.mdl"
    assert room["description"].startswith("Room Temperature")
    assert scenario["record"] == ["teacup_temperature", "heat_loss_to_room"]


def test_the_command_writes_a_scenario_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "teacup.yaml"
    runner = CliRunner()
    done = runner.invoke(cli, ["import", str(model_file("teacup")), "--out", str(out)])
    assert done.exit_code == 0, done.output
    checked = runner.invoke(cli, ["validate", str(out)])
    assert checked.exit_code == 0 and "warning" not in checked.output, checked.output
    printed = runner.invoke(cli, ["import", str(model_file("teacup"))])
    assert printed.exit_code == 0 and printed.output == out.read_text()


def test_the_command_refuses_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "macro.yaml"
    done = CliRunner().invoke(cli, ["import", str(model_file("macro_stock")), "--out", str(out)])
    assert done.exit_code == 2
    assert "test_macro_stock.mdl:3:1: expression_macro: the macro expression_macro" in done.output
    assert not out.exists()


def test_without_pysd_the_command_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    for name in list(sys.modules):
        if name.startswith("pysd"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pysd", None)  # `import pysd...` raises ImportError
    done = CliRunner().invoke(cli, ["import", str(model_file("teacup"))])
    assert done.exit_code == 2
    assert "pip install -e '.[import]'" in done.output


def test_the_guides_example_is_what_sim_import_writes() -> None:
    """examples/sir.yaml (docs/guide.md, section 17) is the import of the committed SIR model."""
    shipped = Path(__file__).resolve().parents[2] / "examples" / "sir.yaml"
    assert shipped.read_text() == translate(model_file("SIR")).text


def test_a_model_that_starts_at_another_time_runs_the_same(tmp_path: Path) -> None:
    """INITIAL TIME is sim's t = 0: the input functions' times move with it."""
    shifted = model_file("input_functions").read_text()
    for was, now_ in [
        ("PULSE(3, 2 )", "PULSE(103, 2 )"),
        ("PULSE TRAIN(7 , 1 , 2 , 12)", "PULSE TRAIN(107 , 1 , 2 , 112)"),
        ("RAMP(1, 14 , 17 )", "RAMP(1, 114 , 117 )"),
        ("STEP(1, 1)", "STEP(1, 101)"),
        ("FINAL TIME  = 25", "FINAL TIME  = 125"),
        ("INITIAL TIME  = 0", "INITIAL TIME  = 100"),
    ]:
        assert was in shifted, f"the model no longer has {was}"
        shifted = shifted.replace(was, now_)
    (tmp_path / "later.mdl").write_text(shifted)
    later, now = translate(tmp_path / "later.mdl"), translate(model_file("input_functions"))
    assert "(t + 100)" not in now.text and "- 100" in later.text
    for imported, name in ((now, "now"), (later, "later")):
        (tmp_path / f"{name}.yaml").write_text(imported.text)
    from tests.imports.reference import ENGINES, load, noise_draws, parameter_draws

    def series(path: Path) -> dict:
        model = load(path)
        params = parameter_draws(model.parameters, "mc", 1, 1, 0, 1)
        noise = noise_draws(model.noises, 1, 1, model.ticks, 0, 1)
        return ENGINES["kernel"](model, params, noise, 0, 1, None).series

    a, b = series(tmp_path / "now.yaml"), series(tmp_path / "later.yaml")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
