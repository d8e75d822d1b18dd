"""A scenario's sources: the file its `source:` texts cite by key, and the check of each citation.

A scenario may name a sources file with a top-level `sources:` (a path, relative to the file
that writes it, so an `extends:` base can declare it for every scenario built on it). That
file is Markdown readable on GitHub, one entry per source:

    ### [MSMT-2025-05] Multilateral Sanctions Monitoring Team, first report
    - publisher: Multilateral Sanctions Monitoring Team (11 states)
    - date: 2025-05-29
    - url: http://...
    - figures: ~9 M rounds delivered Jan–mid-Dec 2024 ...
      (a line indented under a field continues it)
    - reliability: intelligence; about twice the open-source count

A heading whose text starts with `[KEY]` starts an entry (any heading level); any other
heading ends it, and text outside entries is free. A `source:` text cites entries as `[KEY]`
(capital letters, digits and hyphens, at least one letter; `[O]` or `[95% CI]` are not keys).

The rules (docs/language.md, "Sources"):

- a source starting with "assumption" says what is assumed; any keys it cites are checked too;
- a source starting with "imported from" names the model file the number was read from (`sim
  import` writes it); it is neither free text nor a slip, with or without a sources file;
- with a sources file declared, every cited key must have an entry (an error, located at the
  `source:` value, with the nearest key as a hint), and a source that neither starts with
  "assumption" nor cites a key is an error too: the scenario has opted into citing by key;
- without one, nothing is an error: `warnings` says which sources cite free text, and that
  bracketed keys go unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import Place, Problem, ScenarioError, did_you_mean, dotted
from sim.scenario.loader import PathKey
from sim.scenario.schema import Scenario

FIELDS = ("publisher", "date", "url", "figures", "reliability")
REQUIRED = ("publisher", "date", "figures", "reliability")
MAX_BYTES = 2_000_000  # a sources file is tens of kB
KEY = r"[A-Z0-9]+(?:-[A-Z0-9]+)*"
_CITE = re.compile(rf"\[({KEY})\]")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ENTRY = re.compile(rf"^\[({KEY})\]\s*(.*)$")
_FIELD = re.compile(r"^[-*]\s+([A-Za-z_]+)\s*:\s*(.*)$")


@dataclass(frozen=True)
class Entry:
    """One source: its key, title and fields, and where the sources file defines it."""

    key: str
    title: str
    publisher: str
    date: str
    figures: str
    reliability: str
    url: str = ""
    place: Place | None = None

    def as_dict(self) -> dict[str, str]:
        """The entry as a results manifest records it (no place: files move)."""
        return {
            "title": self.title,
            "publisher": self.publisher,
            "date": self.date,
            "url": self.url,
            "figures": self.figures,
            "reliability": self.reliability,
        }


def is_key(text: str) -> bool:
    return bool(re.fullmatch(KEY, text)) and any(c.isalpha() for c in text) and len(text) > 1


def cited(text: str) -> list[str]:
    """The keys a source text cites, in order, each once."""
    return list(dict.fromkeys(k for k in _CITE.findall(text) if is_key(k)))


def is_assumption(text: str) -> bool:
    return text.lstrip().lower().startswith("assumption")


def is_imported(text: str) -> bool:
    """`imported from MODEL.mdl`: the number is the model file's (written by `sim import`)."""
    return text.lstrip().lower().startswith("imported from ")


def read(path: Path) -> dict[str, Entry]:
    """The entries of a sources file; a ScenarioError with every malformed line located."""
    file = str(path)
    try:
        raw = path.read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise ScenarioError.one(f"{file}: cannot read the sources file ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError.one(f"{file}: larger than {MAX_BYTES} bytes; not a sources file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError.one(f"{file}: not UTF-8 text", hint="save it as UTF-8") from None
    entries: dict[str, Entry] = {}
    problems: list[Problem] = []
    current: dict[str, Any] | None = None
    last_field: str | None = None

    def close() -> None:
        if current is None:
            return
        missing = [f for f in REQUIRED if not current["fields"].get(f)]
        if missing:
            problems.append(
                Problem(
                    f"entry [{current['key']}] lacks {', '.join(missing)}",
                    current["place"],
                    hint="each entry has - publisher:, - date:, - figures: and - reliability:",
                )
            )
            return
        fields = current["fields"]
        entries[current["key"]] = Entry(
            current["key"],
            current["title"],
            fields["publisher"],
            fields["date"],
            fields["figures"],
            fields["reliability"],
            fields.get("url", ""),
            current["place"],
        )

    for number, line in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(line)
        if heading:
            close()
            current, last_field = None, None
            entry = _ENTRY.match(heading[2])
            if entry is None:
                continue
            key = entry[1]
            here = Place(file, number, len(heading[1]) + 2)
            if not is_key(key):
                problems.append(Problem(f"[{key}] is not a usable key", here, hint=_KEY_HINT))
                continue
            if key in entries or any(p.message.startswith(f"entry [{key}]") for p in problems):
                first = entries[key].place if key in entries else None
                problems.append(
                    Problem(
                        f"duplicate key [{key}]" + (f" (first at {first})" if first else ""), here
                    )
                )
                continue
            current = {"key": key, "title": entry[2].strip(), "place": here, "fields": {}}
            continue
        if current is None or not line.strip():
            continue
        field = _FIELD.match(line)
        if field:
            name = field[1].lower()
            if name not in FIELDS:
                problems.append(
                    Problem(
                        f"unknown field '{field[1]}' in entry [{current['key']}]",
                        Place(file, number, line.index(field[1]) + 1),
                        hint=did_you_mean(name, FIELDS) or "fields: " + ", ".join(FIELDS),
                    )
                )
                last_field = None
                continue
            if name in current["fields"]:
                problems.append(
                    Problem(
                        f"entry [{current['key']}] gives '{name}' twice",
                        Place(file, number, line.index(field[1]) + 1),
                    )
                )
            current["fields"][name] = field[2].strip()
            last_field = name
        elif line[:1].isspace() and last_field is not None:
            current["fields"][last_field] = f"{current['fields'][last_field]} {line.strip()}"
        else:
            problems.append(
                Problem(
                    f"expected '- field: value' in entry [{current['key']}]",
                    Place(file, number, len(line) - len(line.lstrip()) + 1),
                    hint="indent a line that continues the field above it",
                )
            )
    close()
    if problems:
        raise ScenarioError(problems)
    return entries


_KEY_HINT = "a key is capital letters, digits and hyphens, like KDI-2024-11"


def declared(scenario: Scenario, places: Mapping[PathKey, Place]) -> Path | None:
    """The sources file a scenario names, resolved against the file that names it."""
    place = places.get(("sources",))
    if scenario.sources is None or place is None:  # no file to resolve the path against
        return None
    return Path(place.file).parent / scenario.sources


def texts(scenario: Scenario) -> Iterator[tuple[PathKey, str]]:
    """Every `source:` text in a scenario, with its field path."""
    for name, spec in scenario.parameters.items():
        if spec.source is not None:
            yield ("parameters", name, "source"), spec.source
    for name, stock in scenario.stocks.items():
        if stock.source is not None:
            yield ("stocks", name, "source"), stock.source
    for name, flow in scenario.flows.items():
        if flow.source is not None:
            yield ("flows", name, "source"), flow.source
        if flow.noise is not None and flow.noise.source is not None:
            yield ("flows", name, "noise", "source"), flow.noise.source
    for name, event in scenario.events.items():
        if event.source is not None:
            yield ("events", name, "source"), event.source


def _where(places: Mapping[PathKey, Place], path: PathKey) -> Place | None:
    for n in range(len(path), -1, -1):
        if path[:n] in places:
            return places[path[:n]]
    return None


def problems(scenario: Scenario, places: Mapping[PathKey, Place]) -> list[Problem]:
    """What is wrong with a scenario's citations: errors, and only with a sources file."""
    path = declared(scenario, places)
    if path is None:
        return []
    here = places.get(("sources",))
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        return [
            Problem(
                f"sources file '{scenario.sources}' {what} (looked for {path})",
                here,
                "sources",
                "the path is relative to the file that names it",
            )
        ]
    try:
        entries = read(path)
    except ScenarioError as exc:  # the sources file's own mistakes, located in it
        return exc.problems
    out = []
    for field, text in texts(scenario):
        keys = cited(text)
        place = _where(places, field)
        for key in keys:
            if key not in entries:
                out.append(
                    Problem(
                        f"unknown source key [{key}] (not in {scenario.sources})",
                        place,
                        dotted(field),
                        did_you_mean(key, entries) or f"{len(entries)} keys are defined in {path}",
                    )
                )
        if not keys and not is_assumption(text) and not is_imported(text):
            out.append(
                Problem(
                    f"the source neither cites a key of {scenario.sources} nor starts with "
                    "'assumption'",
                    place,
                    dotted(field),
                    "cite its entry as [KEY], or write 'assumption: ...' and say what is assumed",
                )
            )
    return out


MAX_WARNINGS = 10


def warnings(scenario: Scenario, places: Mapping[PathKey, Place]) -> list[Problem]:
    """What `sim validate` warns about in a scenario without a sources file."""
    if scenario.sources is not None:
        return []
    free: list[Problem] = []
    keyed: list[tuple[PathKey, str]] = []  # (field, the first key it cites)
    for field, text in texts(scenario):
        if cited(text):
            keyed.append((field, cited(text)[0]))
        elif not is_assumption(text) and not is_imported(text):
            free.append(
                Problem(
                    "the source is free text: it neither cites a [KEY] nor starts with "
                    "'assumption'",
                    _where(places, field),
                    dotted(field),
                )
            )
    out = free[:MAX_WARNINGS]
    if len(free) > MAX_WARNINGS:
        out.append(Problem(f"… and {len(free) - MAX_WARNINGS} more free-text sources"))
    if keyed:
        out.append(
            Problem(
                f"{len(keyed)} source{'s' * (len(keyed) != 1)} cite keys like "
                f"[{keyed[0][1]}], but the scenario names no sources file, so no key is checked",
                _where(places, keyed[0][0]),
                dotted(keyed[0][0]),
                "add a top-level `sources: path/to/sources.md` (relative to the scenario file)",
            )
        )
    return out


def entries_cited(scenario: Scenario, places: Mapping[PathKey, Place]) -> dict[str, Entry]:
    """The entries a scenario cites, in the order first cited (unknown keys left out)."""
    path = declared(scenario, places)
    if path is None or not path.is_file():
        return {}
    entries = read(path)
    keys = dict.fromkeys(k for _, text in texts(scenario) for k in cited(text))
    return {k: entries[k] for k in keys if k in entries}
