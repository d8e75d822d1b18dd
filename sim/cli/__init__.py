"""The command line: one module per command group, thin; `app` joins them."""

from sim.cli.app import cli, main

__all__ = ["cli", "main"]
