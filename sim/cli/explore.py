"""`sim explore`: a local web page with the scenario's levers, redrawing the comparison."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from sim.cli.common import FILE, engine_option, err_console

LOCAL = ("127.0.0.1", "localhost", "::1")


@click.command("explore")
@click.argument("scenario", type=FILE)
@click.argument("scenario_b", type=FILE, required=False)
@click.option(
    "--posterior",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Draw the parameters this calibration folder holds from its posterior, as `sim run "
    "--posterior` does (those levers then stay drawn).",
)
@click.option("--runs", "-n", type=int, help="Runs per setting (default: the scenario's).")
@click.option("--seed", "-s", type=int, help="Seed (default: the scenario's).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="NAME",
    help="Outcomes shown at first (repeatable; default: the first three; the page picks more).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="EXPR",
    help="P(condition) per scenario and B − A, as in `sim compare` (repeatable).",
)
@engine_option
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Warm worker processes that run a setting's studies side by side (0: in the "
    "server's own process, one after the other).",
)
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but this machine lets others on the network in.",
)
def explore_command(
    scenario: Path,
    scenario_b: Path | None,
    posterior: Path | None,
    runs: int | None,
    seed: int | None,
    outcomes: tuple[str, ...],
    thresholds: tuple[str, ...],
    engine: str,
    workers: int,
    port: int,
    host: str,
) -> None:
    """Explore SCENARIO's levers in the browser, against SCENARIO_B or as written.

    Starts a local web page: each parameter and event time is a slider (or stays uncertain),
    and every change reruns the study and redraws the distributions, their paired difference
    and the fan charts. "Save this setting" writes it as a scenario file that extends the
    original, for `sim run`, `sim compare` and `sim report`. Needs the explore extra (pip
    install -e '.[explore]').
    """
    try:
        import uvicorn

        from sim.present.explore import Explorer
        from sim.present.explore_app import app
    except ImportError as exc:
        raise click.ClickException(
            f"sim explore needs the explore extra ({exc.name} is missing): "
            "pip install -e '.[explore]'"
        ) from None
    console = err_console()
    paths = [scenario] if scenario_b is None else [scenario, scenario_b]
    with console.status("running the scenarios as written…"):
        explorer = Explorer(
            paths,
            runs=runs,
            seed=seed,
            posterior=posterior,
            outcomes=outcomes,
            thresholds=thresholds,
            engine=engine,
            workers=workers,
        )
    hosts = ("127.0.0.1", "localhost") if host in LOCAL else ("*",)
    if host not in LOCAL:
        console.print(
            f"warning: listening on {host}: anyone who can reach this machine can run studies "
            "and save settings beside the scenario files"
        )
    config = uvicorn.Config(
        app(explorer, hosts), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        explorer.close()
        raise click.ClickException(f"could not listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"sim explore: open http://{shown}:{bound}/  (Ctrl+C stops it)")
    try:
        server.run(sockets=[sock])
    finally:
        explorer.close()
