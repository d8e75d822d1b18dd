"""`sim --help` is quick: it lists every command without importing any command's module (so
no numpy, scipy, pyarrow or pydantic), and the one-line help it lists is each command's own."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from sim.cli.app import COMMANDS, cli

HEAVY = ("numpy", "scipy", "pyarrow", "pydantic", "matplotlib", "simpy", "sim.model")


def test_help_imports_no_command_module():
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from sim.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "print(json.dumps([r.exit_code, r.output, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, output, modules = json.loads(done.stdout)
    assert exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in output
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY]
    assert not loaded, f"sim --help imported {loaded[:5]}"


def test_listed_help_is_each_commands_own():
    ctx = click.Context(cli, info_name="sim")
    for name, (_, _, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert short == command.get_short_help_str(limit=62), (
            f"{name}: update its line in sim/cli/app.py COMMANDS"
        )


def test_import_sim_is_lazy_but_complete():
    code = (
        "import json, sys, sim\n"
        "before = 'numpy' in sys.modules\n"
        "names = [n for n in sim.__all__ if callable(getattr(sim, n))]\n"
        "print(json.dumps([before, names]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, names = json.loads(done.stdout)
    assert not before
    import sim

    assert names == sim.__all__
