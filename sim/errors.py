"""The one exception family `sim` raises for a user's mistakes, each problem with its place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

USER_ERROR = 2  # the exit status of a user's mistake (a bad file, a wrong option)
OUR_ERROR = 1  # the exit status of a bug in sim


@dataclass(frozen=True)
class Place:
    """Where a value sits in a scenario file: file, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where, which field, what, and a hint if we have one."""

    message: str
    place: Place | None = None
    path: str = ""
    hint: str | None = None

    def __str__(self) -> str:
        head = f"{self.place}: " if self.place else ""
        field = f"{self.path}: " if self.path else ""
        tail = f"; {self.hint}" if self.hint else ""
        return f"{head}{field}{self.message}{tail}"


class ScenarioError(Exception):
    """A scenario (or a request about one) is wrong; holds every problem found, in file order."""

    def __init__(self, problems: Problem | Sequence[Problem]):
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[list[Problem]]]:
        # Raised in a worker process, it travels back pickled: rebuild it from its problems,
        # not from the joined message.
        return type(self), (self.problems,)

    @classmethod
    def one(
        cls, message: str, place: Place | None = None, path: str = "", hint: str | None = None
    ) -> ScenarioError:
        return cls(Problem(message, place, path, hint))


class ResultsError(Exception):
    """A results folder is missing, incomplete, foreign or damaged."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint naming the closest valid choice, or None if nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def dotted(path: Sequence[str | int]) -> str:
    """A field path as users write it: flows.oil.rate, outcomes.x.of, record[2]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
