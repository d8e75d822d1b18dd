"""Reads scenario YAML safely, keeping each value's place, and resolves `extends:` chains.

The result is a `Document`: plain data (dicts, lists, scalars) plus a table from field paths to
the place in which file the value was written, so that any later error can point at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.errors import Place, Problem, ScenarioError, dotted

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 5_000_000
MAX_NODES = 200_000  # a YAML alias bomb expands past this long before it hurts
MAX_DEPTH = 64
MAX_EXTENDS = 32

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass
class Document:
    """A scenario's data after `extends:` is merged, with the place of every value and key."""

    data: dict[str, Any]
    places: dict[PathKey, Place] = field(default_factory=dict)
    key_places: dict[PathKey, Place] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # the extends chain, base first

    def place(self, path: PathKey, key: bool = False) -> Place | None:
        """The place of the value at `path`, or of its nearest written ancestor."""
        table = self.key_places if key else self.places
        for n in range(len(path), -1, -1):
            found = table.get(path[:n]) or (self.places.get(path[:n]) if key else None)
            if found is not None:
                return found
        return None


def _place(file: str, node: Node) -> Place:
    return Place(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed YAML node tree into plain data, recording places; refuses unsafe tags."""

    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.count = 0
        self.places: dict[PathKey, Place] = {}
        self.key_places: dict[PathKey, Place] = {}

    def build(self, node: Node, path: PathKey, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ScenarioError.one(
                f"more than {MAX_NODES} values (a YAML alias bomb?)", _place(self.file, node)
            )
        if depth > MAX_DEPTH:
            raise ScenarioError.one(
                f"nested deeper than {MAX_DEPTH} levels", _place(self.file, node)
            )
        self.places[path] = _place(self.file, node)
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                raise self._tag_error(node)
            out: dict[str, Any] = {}
            self.loader.flatten_mapping(node)  # YAML merge keys (<<) are plain YAML; allow them
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, str):
                    raise ScenarioError.one(
                        f"a key must be a name, not {key!r}", _place(self.file, key_node)
                    )
                if key in out:
                    raise ScenarioError.one(
                        f"duplicate key '{key}'", _place(self.file, key_node), dotted(path + (key,))
                    )
                self.key_places[path + (key,)] = _place(self.file, key_node)
                out[key] = self.build(value_node, path + (key,), depth + 1)
            return out
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._tag_error(node)
            return [self.build(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            if node.style in ("'", '"'):  # point at the text, not the quote, for column math
                here = self.places[path]
                self.places[path] = Place(here.file, here.line, here.col + 1)
            return self._scalar(node)
        raise self._tag_error(node)  # pragma: no cover - yaml has no other node kinds

    def _scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise ScenarioError.one("a key must be a plain name", _place(self.file, node))
        try:
            return self.loader.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise self._tag_error(node) from exc

    def _tag_error(self, node: Node) -> ScenarioError:
        return ScenarioError.one(
            f"YAML tag '{node.tag}' is not allowed (plain data only)",
            _place(self.file, node),
            hint="remove the tag; scenarios hold numbers, strings, lists and mappings",
        )


def read_yaml(path: Path) -> Document:
    """One YAML file as a `Document`, without resolving `extends:`."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError.one(f"{file}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError.one(f"{file}: is a folder, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError.one(f"{file}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError.one(f"{file}: larger than {MAX_FILE_BYTES} bytes; not a scenario")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError.one(f"not UTF-8 text (byte {exc.start})", Place(file, 1, 1)) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError.one(
                "empty file; a scenario needs at least name, start, months", Place(file, 1, 1)
            )
        builder = _Builder(file, loader)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Place(file, mark.line + 1, mark.column + 1) if mark else Place(file, 1, 1)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise ScenarioError.one(f"not valid YAML: {what}", where) from None
    except yaml.YAMLError as exc:
        raise ScenarioError.one(f"not valid YAML: {exc}", Place(file, 1, 1)) from None
    except RecursionError:
        raise ScenarioError.one("YAML nested too deeply", Place(file, 1, 1)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ScenarioError.one(
            f"a scenario is a mapping of sections (name:, stocks:, ...), not a {type(data).__name__}",
            builder.places.get(()),
        )
    return Document(data, builder.places, builder.key_places, [file])


def load_document(path: str | Path) -> Document:
    """A scenario file with its `extends:` chain merged in (base first, this file wins)."""
    return _load(Path(path), [])


def _load(path: Path, stack: list[Path]) -> Document:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in [*stack, resolved])
        raise ScenarioError.one(f"extends cycle: {chain}")
    if len(stack) >= MAX_EXTENDS:
        raise ScenarioError.one(f"extends chain longer than {MAX_EXTENDS} files")
    doc = read_yaml(path)
    parent_ref = doc.data.get("extends")
    if parent_ref is None:
        doc.data.pop("extends", None)
        return doc
    if not isinstance(parent_ref, str) or not parent_ref.strip():
        raise ScenarioError.one(
            "extends must be a path to another scenario file",
            doc.places.get(("extends",)),
            "extends",
        )
    parent_path = path.parent / parent_ref
    if not parent_path.is_file():
        raise ScenarioError.one(
            f"extends: no such file '{parent_ref}' (looked for {parent_path})",
            doc.places.get(("extends",)),
            "extends",
        )
    try:
        parent = _load(parent_path, [*stack, resolved])
    except ScenarioError as exc:
        if exc.problems and exc.problems[0].message.startswith("extends cycle"):
            exc.problems[0] = Problem(
                exc.problems[0].message, doc.places.get(("extends",)), "extends"
            )
        raise
    doc.data.pop("extends")
    return _merge(parent, doc)


def _merge(parent: Document, child: Document) -> Document:
    """Deep-merge `child` over `parent`: mappings merge, anything else replaces, null deletes."""
    places = dict(parent.places)
    key_places = dict(parent.key_places)

    def drop(prefix: PathKey) -> None:
        for table in (places, key_places):
            for key in [k for k in table if k[: len(prefix)] == prefix]:
                del table[key]

    def adopt(prefix: PathKey) -> None:
        for src, dst in ((child.places, places), (child.key_places, key_places)):
            for key, value in src.items():
                if key[: len(prefix)] == prefix:
                    dst[key] = value

    def merge(base: dict[str, Any], over: dict[str, Any], path: PathKey) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            sub = path + (key,)
            if value is None and key in base:
                drop(sub)
                del out[key]
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                key_places[sub] = child.key_places.get(sub, key_places.get(sub))  # type: ignore[arg-type]
                out[key] = merge(base[key], value, sub)
            else:
                drop(sub)
                adopt(sub)
                out[key] = value
        return out

    data = merge(parent.data, child.data, ())
    places[()] = child.places.get((), places.get((), Place(child.files[0], 1, 1)))
    return Document(data, places, key_places, [*parent.files, *child.files])


def walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) in plain data, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, path + (i,))
