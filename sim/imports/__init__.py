"""System-dynamics models brought into sim: `translate(MODEL)` reads a Vensim (`.mdl`) or
XMILE (`.xmile`, `.stmx`) file with PySD's translators and writes it as a scenario file's
text (docs/import.md). Needs the `import` extra: `pip install -e '.[import]'`."""

from __future__ import annotations

from sim.imports.translate import Imported, translate

__all__ = ["Imported", "translate"]
