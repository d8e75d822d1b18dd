"""Writes docs/cli.md from the click commands themselves, so the page can't drift from the code.

Usage: `python docs/make_cli_doc.py > docs/cli.md`
"""

from __future__ import annotations

import inspect

import click

from sim.cli import cli


def _usage(name: str, command: click.Command, ctx: click.Context) -> str:
    pieces = " ".join(command.collect_usage_pieces(ctx))
    return f"sim {name} {pieces}".rstrip()


def _kind(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(param.type, click.Choice):
        return " \\| ".join(str(c) for c in param.type.choices)
    return param.metavar or param.type.name.upper()


def _default(param: click.Parameter, ctx: click.Context) -> str:
    if not isinstance(param, click.Option) or param.is_flag:
        return ""
    value = param.get_default(ctx, call=False)
    # click >= 8.3 reports "no default" as a sentinel object rather than None
    if value is None or callable(value) or type(value).__name__ == "Sentinel":
        return ""
    if param.multiple and not value:
        return ""
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _params(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            name = f"`{param.human_readable_name}`" + (" ..." if param.nargs == -1 else "")
            help_text = "argument" + (" (one or more)" if param.nargs == -1 else "")
        elif isinstance(param, click.Option):
            if param.hidden:
                continue
            name = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            help_text = param.help or ""
            if param.multiple and "repeatable" not in help_text:
                help_text += " (repeatable)"
        else:  # pragma: no cover - click has only these two
            continue
        rows.append(f"| {name} | {_kind(param)} | {_default(param, ctx)} | {_cell(help_text)} |")
    return rows


def page() -> str:
    """The markdown page for every `sim` command."""
    root = click.Context(cli, info_name="sim")
    lines = [
        "# `sim` command line",
        "",
        "Generated from the click commands by `python docs/make_cli_doc.py > docs/cli.md`;",
        "edit the commands' help, not this file. `sim COMMAND --help` prints the same.",
        "",
        "## `sim`",
        "",
        inspect.cleandoc(cli.help or ""),
        "",
        "| option | takes | default | what it does |",
        "|---|---|---|---|",
        *_params(cli, root),
        "",
        "Exit status: 0 on success; 2 for a mistake in a scenario, in a results folder or in the",
        "command line (the message says where); 1 for a bug in sim (rerun with `--debug`).",
    ]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert command is not None
        ctx = click.Context(command, info_name=name, parent=root)
        lines += [
            "",
            f"## `sim {name}`",
            "",
            "```",
            _usage(name, command, ctx),
            "```",
            "",
            inspect.cleandoc(command.help or ""),
            "",
            "| argument / option | takes | default | what it does |",
            "|---|---|---|---|",
            *_params(command, ctx),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(page(), end="")
