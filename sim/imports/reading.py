"""A Vensim or XMILE file read into PySD's abstract model, and the place of each equation.

PySD (`pip install -e '.[import]'`) parses both formats; this module is the only one that
imports it, so the rest of sim runs without it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import Place, Problem, ScenarioError

SUFFIXES = {".mdl": "vensim", ".xmile": "xmile", ".stmx": "xmile", ".xml": "xmile"}
INSTALL = "pip install -e '.[import]'"


@dataclass
class Source:
    """A model file as PySD read it: its sections (the first is the main model) and its text,
    kept to say on which line an equation is written."""

    path: Path
    kind: str  # "vensim" or "xmile"
    sections: list[Any]
    text: list[str]

    def place(self, name: str) -> Place:
        """The line where `name` is defined (its first line), else the file's first line."""
        words = [re.escape(w) for w in re.split(r"[\s_]+", name.strip()) if w]
        spelled = r"[\s_]+".join(words)
        if self.kind == "vensim":
            pattern = re.compile(rf'^\s*"?{spelled}"?\s*(\[[^\]]*\]\s*)?(=|\(|:)', re.I)
        else:
            pattern = re.compile(rf'name\s*=\s*"{spelled}"', re.I)
        for number, line in enumerate(self.text, start=1):
            if pattern.search(line):
                return Place(str(self.path), number, 1)
        return Place(str(self.path), 1, 1)


def kind_of(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ScenarioError(
            Problem(
                f"{path.name}: not a Vensim (.mdl) or XMILE (.xmile, .stmx) model file",
                Place(str(path), 1, 1),
            )
        )
    return kind


def read(path: Path) -> Source:
    """Parse `path` with PySD's translator into its abstract model."""
    kind = kind_of(path)
    if not path.is_file():
        raise ScenarioError(Problem(f"{path}: no such file"))
    try:
        if kind == "vensim":
            from pysd.translators.vensim.vensim_file import VensimFile as Reader
        else:
            from pysd.translators.xmile.xmile_file import XmileFile as Reader
    except ImportError:
        raise ScenarioError(
            Problem(
                "sim import reads Vensim and XMILE files with PySD, which is not installed",
                hint=f"install it with `{INSTALL}`",
            )
        ) from None
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PySD warns on stderr about what it skips
            model_file = Reader(path)
            model_file.parse()
            abstract = model_file.get_abstract_model()
    except Exception as exc:  # PySD's parser raises plain exceptions with its own message
        message = str(exc).strip().splitlines()
        raise ScenarioError(
            Problem(
                f"PySD could not parse the model: {message[0] if message else type(exc).__name__}",
                Place(str(path), 1, 1),
            )
        ) from None
    return Source(path, kind, list(abstract.sections), text)
