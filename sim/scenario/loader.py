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

MAX_FILE_BYTES = 1_000_000  # scenarios are a few kB; pure-Python YAML reads ~0.4 MB/s
MAX_NODES = 200_000  # values once aliases expand; an alias bomb passes this early
MAX_DEPTH = 64
MAX_EXTENDS = 32
_CYCLE = "files extend each other in a cycle"

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STANDARD_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """A scenario's data after `extends:` is merged, with the place of every value and key."""

    data: dict[str, Any]
    places: dict[PathKey, Place] = field(default_factory=dict)
    key_places: dict[PathKey, Place] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # the extends chain, base first
    deleted: dict[PathKey, Place] = field(default_factory=dict)  # keys a child set to null

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


def _refuse_bombs(file: str, root: Node) -> None:
    """Refuse a node tree whose aliases expand past MAX_NODES values, before expanding it.

    Aliases share nodes, so sizes are counted once per node: a billion laughs is refused in
    microseconds instead of after building the first MAX_NODES values.
    """
    sizes: dict[int, float] = {}
    open_: set[int] = set()

    def children(node: Node) -> list[Node]:
        if isinstance(node, MappingNode):
            return [part for pair in node.value for part in pair]
        if isinstance(node, SequenceNode):
            return list(node.value)
        return []

    def size(node: Node) -> float:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ScenarioError.one(
                "an anchor (&) is used inside itself",
                _place(file, node),
                hint="remove the alias (*)",
            )
        open_.add(key)
        total = 1 + sum(size(child) for child in children(node))
        open_.discard(key)
        sizes[key] = total
        return total

    node = root
    if size(node) <= MAX_NODES:
        return
    while True:  # point at the smallest part that is still too big
        big = [c for c in children(node) if sizes[id(c)] > MAX_NODES]
        if not big:
            raise ScenarioError.one(
                f"more than {MAX_NODES} values (a YAML alias bomb?)", _place(file, node)
            )
        node = big[0]


class _Builder:
    """Turns a composed YAML node tree into plain data, recording places; refuses unsafe tags."""

    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.places: dict[PathKey, Place] = {}
        self.key_places: dict[PathKey, Place] = {}

    def build(self, node: Node, path: PathKey, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ScenarioError.one(
                f"nested deeper than {MAX_DEPTH} levels", _place(self.file, node)
            )
        self.places[path] = _place(self.file, node)
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                raise self._tag_error(node, path)
            out: dict[str, Any] = {}
            merged: set[str] = set()
            for key_node, value_node, from_merge in self._pairs(node, path, depth):
                key = self._scalar(key_node, path)
                if not isinstance(key, str):
                    raise ScenarioError.one(
                        f"a key must be a name, not {key!r}",
                        _place(self.file, key_node),
                        dotted(path),
                    )
                if key in out and key not in merged:
                    raise ScenarioError.one(
                        f"duplicate key '{key}'", _place(self.file, key_node), dotted(path + (key,))
                    )
                if from_merge:
                    merged.add(key)
                else:
                    merged.discard(key)  # the mapping's own key overrides a merged one
                self.key_places[path + (key,)] = _place(self.file, key_node)
                out[key] = self.build(value_node, path + (key,), depth + 1)
            return out
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._tag_error(node, path)
            return [self.build(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            if node.style in ("'", '"'):  # point at the text, not the quote, for column math
                here = self.places[path]
                self.places[path] = Place(here.file, here.line, here.col + 1)
            return self._scalar(node, path)
        raise self._tag_error(node, path)  # pragma: no cover - yaml has no other node kinds

    def _pairs(self, node: MappingNode, path: PathKey, depth: int) -> list[tuple[Node, Node, bool]]:
        """(key, value, merged?) pairs with YAML merge keys (<<) expanded, merged ones first.

        Done here rather than by PyYAML's flatten_mapping, which edits shared (aliased) nodes in
        place and so can't tell a mapping's own keys, which override, from merged ones.
        Of several merged mappings the first to give a key wins, as YAML's merge spec says.
        """
        if depth > MAX_DEPTH:
            raise ScenarioError.one(
                f"merge keys (<<) nested deeper than {MAX_DEPTH} levels", _place(self.file, node)
            )
        own: list[tuple[Node, Node, bool]] = []
        merged: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode) or source.tag != _MAP_TAG:
                    raise ScenarioError.one(
                        "a merge key (<<) takes a mapping or a list of mappings",
                        _place(self.file, source),
                        dotted(path),
                    )
                merged += [(k, v, True) for k, v, _ in self._pairs(source, path, depth + 1)]
        first: dict[Any, tuple[Node, Node, bool]] = {}
        for key_node, value_node, _ in merged:
            value = key_node.value if isinstance(key_node, ScalarNode) else id(key_node)
            first.setdefault(value, (key_node, value_node, True))
        return [*first.values(), *own]

    def _scalar(self, node: Node, path: PathKey) -> Any:
        if not isinstance(node, ScalarNode):
            raise ScenarioError.one(
                "a key must be a plain name", _place(self.file, node), dotted(path)
            )
        try:
            return self.loader.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise self._tag_error(node, path) from exc

    def _tag_error(self, node: Node, path: PathKey) -> ScenarioError:
        tag = str(node.tag)
        if tag.startswith(_STANDARD_TAG):  # show it as written: !!python/object/apply:...
            tag = "!!" + tag.removeprefix(_STANDARD_TAG)
        return ScenarioError.one(
            f"YAML tag '{tag}' is not allowed (plain data only)",
            _place(self.file, node),
            dotted(path),
            "remove the tag; scenarios hold numbers, strings, lists and mappings",
        )


def read_yaml(path: Path) -> Document:
    """One YAML file as a `Document`, without resolving `extends:`."""
    file = str(path)
    try:
        with path.open("rb") as fh:  # bounded: /dev/zero or a huge log must not hang us
            raw = fh.read(MAX_FILE_BYTES + 1)
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
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        where = Place(file, raw.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
        raise ScenarioError.one(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", where, hint="save the file as UTF-8"
        ) from None
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # it checks the first characters at once
        raise _unprintable(file, text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError.one(
                "empty file; a scenario needs at least name, start, months", Place(file, 1, 1)
            )
        _refuse_bombs(file, node)
        builder = _Builder(file, loader)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Place(file, mark.line + 1, mark.column + 1) if mark else Place(file, 1, 1)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        hint = "indent with spaces; YAML does not allow tabs" if "'\\t'" in what else None
        raise ScenarioError.one(f"not valid YAML: {what}", where, hint=hint) from None
    except yaml.reader.ReaderError as exc:
        raise _unprintable(file, text, exc) from None
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


def _unprintable(file: str, text: str, exc: yaml.reader.ReaderError) -> ScenarioError:
    """YAML refuses control characters (NUL, ESC, ...); say which and where."""
    at = min(max(exc.position, 0), len(text))
    line_start = text.rfind("\n", 0, at) + 1
    return ScenarioError.one(
        f"not valid YAML: control character U+{exc.character:04X} is not allowed",
        Place(file, text.count("\n", 0, at) + 1, at - line_start + 1),
        hint="remove it; is this a text file?",
    )


def load_document(path: str | Path) -> Document:
    """A scenario file with its `extends:` chain merged in (base first, this file wins)."""
    return _load(Path(path), [])


def _load(path: Path, stack: list[Path]) -> Document:
    resolved = path.resolve()
    if resolved in [p.resolve() for p in stack]:
        # Name the files as the user named them, not by absolute paths that vary by machine.
        chain = " -> ".join(str(p) for p in [*stack, path])
        raise ScenarioError.one(f"{_CYCLE}: {chain}")
    if len(stack) >= MAX_EXTENDS:
        raise ScenarioError.one(f"extends chain longer than {MAX_EXTENDS} files")
    doc = read_yaml(path)
    parent_ref = doc.data.get("extends")
    if parent_ref is None:
        doc.data.pop("extends", None)
        return doc
    if not isinstance(parent_ref, str) or not parent_ref.strip():
        raise ScenarioError.one(
            f"expected a path to another scenario file, got {parent_ref!r}",
            doc.places.get(("extends",)),
            "extends",
        )
    parent_path = path.parent / parent_ref
    if not parent_path.is_file():
        raise ScenarioError.one(
            f"no such file '{parent_ref}' (looked for {parent_path})",
            doc.places.get(("extends",)),
            "extends",
        )
    try:
        parent = _load(parent_path, [*stack, path])
    except ScenarioError as exc:
        if exc.problems and exc.problems[0].message.startswith(_CYCLE):
            # Point at this file's `extends:`; the outermost file's wins as this unwinds.
            cycle = Problem(exc.problems[0].message, doc.places.get(("extends",)), "extends")
            raise ScenarioError([cycle, *exc.problems[1:]]) from None
        raise
    doc.data.pop("extends")
    return _merge(parent, doc)


def _merge(parent: Document, child: Document) -> Document:
    """Deep-merge `child` over `parent`: mappings merge, anything else replaces, null deletes."""
    places = dict(parent.places)
    key_places = dict(parent.key_places)
    deleted = {**parent.deleted, **child.deleted}

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
                deleted[sub] = child.key_places.get(sub) or child.places.get(sub)  # type: ignore[assignment]
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                # A merged mapping is where the child wrote it: that is the file being edited.
                for src, dst in ((child.key_places, key_places), (child.places, places)):
                    if sub in src:
                        dst[sub] = src[sub]
                out[key] = merge(base[key], value, sub)
            else:
                drop(sub)
                adopt(sub)
                out[key] = value
        return out

    data = merge(parent.data, child.data, ())
    places[()] = child.places.get((), places.get((), Place(child.files[0], 1, 1)))
    return Document(data, places, key_places, [*parent.files, *child.files], deleted)


def walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) in plain data, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, path + (i,))
