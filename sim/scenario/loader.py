"""Reads scenario YAML safely, keeping each value's place, and resolves `extends:` chains.

The result is a `Document`: plain data (dicts, lists, scalars) plus a table from field paths to
the place in which file the value was written, so that any later error can point at it.

Files are read as YAML 1.2 (core schema, plus YYYY-MM-DD dates): `017` is refused rather than
read as octal 15, `1:30` is text, only true/false are booleans, `1e300` and `.inf` are numbers.
Only regular files are read, and `extends:` reaches only files in the naming file's folder tree
(or under `SIM_EXTENDS_ROOT`).
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver, Resolver
from yaml.scanner import Scanner

from sim.errors import Place, Problem, ScenarioError, dotted

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 1_000_000  # scenarios are a few kB; pure-Python YAML reads ~0.4 MB/s
MAX_NODES = 200_000  # values once aliases expand; an alias bomb passes this early
MAX_DEPTH = 64
MAX_EXTENDS = 32
_CYCLE = "files extend each other in a cycle"
EXTENDS_ROOT = "SIM_EXTENDS_ROOT"  # folders (joined like PATH) whose files extends may reach
# The top-level keys of a scenario (sim.scenario.schema.Scenario's fields; a test keeps them
# equal). A file named by `extends:` that has none of them is not a scenario.
SCENARIO_KEYS = frozenset(
    {"name", "description", "extends", "start", "months", "seed", "runs", "sampler",
     "parameters", "state", "variables", "stocks", "flows", "events", "outcomes", "record",
     "step", "data", "sources", "dimensions"}
)  # fmt: skip

_STANDARD_TAG = "tag:yaml.org,2002:"
_MAP_TAG = _STANDARD_TAG + "map"
_SEQ_TAG = _STANDARD_TAG + "seq"
_MERGE_TAG = _STANDARD_TAG + "merge"
_NULL_TAG = _STANDARD_TAG + "null"
_BOOL_TAG = _STANDARD_TAG + "bool"
_INT_TAG = _STANDARD_TAG + "int"
_FLOAT_TAG = _STANDARD_TAG + "float"
_STR_TAG = _STANDARD_TAG + "str"
_DATE_TAG = _STANDARD_TAG + "timestamp"
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+$")


class _Resolver12(BaseResolver):
    """YAML 1.2 core schema's implicit types, plus merge keys and YYYY-MM-DD dates.

    PyYAML implements YAML 1.1, whose implicit types turn `017` into 15, `1:30` into 90 and
    `on`/`no` into booleans, and leave `1e300` a string. The regular expressions below are the
    1.2 core schema's (yaml.org/spec/1.2.2, 10.3.2). Dates and `<<` are kept from 1.1, as
    ruamel.yaml's 1.2 mode keeps them: `start: 2024-01-15` is documented, and merge keys are
    how scenarios share a block.
    """


for _tag, _pattern, _first in (
    (_NULL_TAG, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_BOOL_TAG, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_INT_TAG, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT_TAG,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    (_MERGE_TAG, r"^(?:<<)$", ["<"]),
):
    _Resolver12.add_implicit_resolver(_tag, re.compile(_pattern), _first)
for _first, _resolvers in Resolver.yaml_implicit_resolvers.items():  # PyYAML's date pattern
    for _tag, _regexp in _resolvers:
        if _tag == _DATE_TAG:
            _Resolver12.add_implicit_resolver(_tag, _regexp, [_first])


class _Loader(Reader, Scanner, Parser, Composer, SafeConstructor, _Resolver12):
    """PyYAML's pieces with the 1.2 resolver; remembers which nodes carried an explicit tag.

    A composed node holds its resolved tag only, so `!!str 5` and `"5"` look alike afterwards;
    the builder refuses every explicit tag, so they are noted while composing.
    """

    def __init__(self, text: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _Resolver12.__init__(self)
        self.explicit: dict[int, str] = {}  # id(node) -> tag as written

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = None if self.check_event(AliasEvent) else self.peek_event()
        node = super().compose_node(parent, index)
        tag = getattr(event, "tag", None)
        if tag is not None:
            self.explicit[id(node)] = tag
        return node


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

    def __init__(self, file: str, loader: _Loader):
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
        if id(node) in self.loader.explicit:
            raise self._tag_error(node, path)
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
        merge_keys = 0
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG or id(key_node) in self.loader.explicit:
                own.append((key_node, value_node, False))
                continue
            merge_keys += 1
            if merge_keys > 1:  # YAML allows one; a second would silently lose the first
                raise ScenarioError.one(
                    "duplicate key '<<'",
                    _place(self.file, key_node),
                    dotted(path + ("<<",)),
                    "merge several mappings with one key: <<: [*a, *b]",
                )
            if id(value_node) in self.loader.explicit:
                raise self._tag_error(value_node, path)
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if id(source) in self.loader.explicit:
                    raise self._tag_error(source, path)
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
        if id(node) in self.loader.explicit:
            raise self._tag_error(node, path)
        text, tag = node.value, node.tag
        if tag == _STR_TAG:
            return text
        if tag == _NULL_TAG:
            return None
        if tag == _BOOL_TAG:
            return text.lower() == "true"
        if tag == _MERGE_TAG:  # `<<` as a value, not a key: just text
            return text
        if tag == _INT_TAG:
            if _LEADING_ZERO.match(text):
                decimal = ("-" if text.startswith("-") else "") + (text.lstrip("+-0") or "0")
                raise ScenarioError.one(
                    f"{text} has a leading zero: YAML 1.1 reads it as an octal number, "
                    "YAML 1.2 as decimal",
                    _place(self.file, node),
                    dotted(path),
                    f"write {decimal} for the decimal number, or 0o... for octal",
                )
            try:
                return int(text, 0)
            except ValueError:  # longer than Python's 4300-digit limit
                raise ScenarioError.one(
                    f"a whole number of {len(text)} digits is too long",
                    _place(self.file, node),
                    dotted(path),
                ) from None
        if tag == _FLOAT_TAG:
            bare = text.lstrip("+-").lower()
            if bare in (".inf", ".nan"):
                value = math.inf if bare == ".inf" else math.nan
                return -value if text.startswith("-") else value
            return float(text)  # 1e999 is inf; the schema refuses non-finite numbers
        if tag == _DATE_TAG:
            try:
                return self.loader.construct_yaml_timestamp(node)
            except ValueError as exc:  # 2024-13-01
                raise ScenarioError.one(
                    f"not a valid date ({exc})", _place(self.file, node), dotted(path)
                ) from None
        raise self._tag_error(node, path)  # pragma: no cover - the resolver gives no other tag

    def _tag_error(self, node: Node, path: PathKey) -> ScenarioError:
        tag = self.loader.explicit.get(id(node), str(node.tag))
        if tag.startswith(_STANDARD_TAG):  # show it as written: !!python/object/apply:...
            tag = "!!" + tag.removeprefix(_STANDARD_TAG)
        return ScenarioError.one(
            f"YAML tag '{tag}' is not allowed (plain data only)",
            _place(self.file, node),
            dotted(path),
            "remove the tag; scenarios hold numbers, strings, lists and mappings",
        )


class _Unreadable(Exception):
    """A path that is not a readable regular file; the message says what it is instead."""


_NOT_A_FILE = ", not a scenario file"


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file, at most MAX_FILE_BYTES + 1 of them.

    Opened without blocking and checked on the open descriptor, so a FIFO cannot hang the read
    and a file swapped for one between a check and the open is still caught.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _Unreadable("no such file") from None
    except IsADirectoryError:
        raise _Unreadable("is a folder" + _NOT_A_FILE) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Unreadable("is a symlink loop" + _NOT_A_FILE) from None
        raise _Unreadable(f"cannot read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _Unreadable(_kind(mode) + _NOT_A_FILE)
    with os.fdopen(fd, "rb") as fh:
        try:
            raw = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _Unreadable(f"cannot read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _Unreadable(f"larger than {MAX_FILE_BYTES} bytes; not a scenario")
    return raw


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is not a regular file"  # pragma: no cover - doors, whiteouts


def read_yaml(path: Path) -> Document:
    """One YAML file as a `Document`, without resolving `extends:`."""
    try:
        raw = _read_bytes(path)
    except _Unreadable as exc:
        raise ScenarioError.one(f"{path}: {exc}") from None
    data, builder = _parse(path, raw)
    if not isinstance(data, dict):
        raise ScenarioError.one(
            f"a scenario is a mapping of sections (name:, stocks:, ...), not a {_type(data)}",
            builder.places.get(()),
        )
    return Document(data, builder.places, builder.key_places, [str(path)])


def _type(data: Any) -> str:
    kinds = ((list, "list"), (str, "string"), (bool, "boolean"), (int | float, "number"))
    if data is None:
        return "null"
    return next((word for kind, word in kinds if isinstance(data, kind)), "date")


def _parse(path: Path, raw: bytes) -> tuple[Any, _Builder]:
    """A file's bytes as plain data, and the builder that holds each value's place."""
    file = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        where = Place(file, raw.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
        raise ScenarioError.one(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", where, hint="save the file as UTF-8"
        ) from None
    try:
        loader = _Loader(text)
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
        plain = _indentation(text, exc)
        if plain is not None:  # point at the line's first character, not at its colon
            message, hint, col = plain
            raise ScenarioError.one(message, Place(file, where.line, col), hint=hint) from None
        raise ScenarioError.one(f"not valid YAML: {what}", where, hint=hint) from None
    except yaml.reader.ReaderError as exc:
        raise _unprintable(file, text, exc) from None
    except yaml.YAMLError as exc:
        raise ScenarioError.one(f"not valid YAML: {exc}", Place(file, 1, 1)) from None
    except RecursionError:
        raise ScenarioError.one("YAML nested too deeply", Place(file, 1, 1)) from None
    finally:
        loader.dispose()
    return data, builder


_KEY_COLON = re.compile(r":(?=\s|$)")
_INDENT_HINT = (
    "indent the keys of one mapping by the same number of spaces, and a block under a key "
    "deeper than that key (YAML counts spaces; tabs are not allowed)"
)


def _indentation(text: str, exc: yaml.MarkedYAMLError) -> tuple[str, str, int] | None:
    """PyYAML's scanner and parser errors that a line's indentation causes, said plainly.

    `mapping values are not allowed here` at a line's first `key:` means the line is deeper
    than the key above it, which already has a value; `expected <block end>, but found
    '<block mapping start>'` means a line sits between two levels. (A `: ` inside a plain value
    raises the first one too, further along its line: that is not indentation.)"""
    mark = exc.problem_mark
    lines = text.splitlines()
    if mark is None or not 0 <= mark.line < len(lines):
        return None
    line = lines[mark.line]
    indent = len(line) - len(line.lstrip(" "))
    problem = str(exc.problem or "")
    if problem.startswith("mapping values are not allowed"):
        first = _KEY_COLON.search(line)
        if first is None or first.start() != mark.column:
            return (
                "not valid YAML: a ': ' inside a plain value",
                'quote the value, e.g. description: "Claim: ..."',
                mark.column + 1,
            )
        above = next(
            (
                s
                for s in reversed(lines[: mark.line])
                if s.strip() and not s.lstrip().startswith("#")
            ),
            "",
        )
        depth = len(above) - len(above.lstrip(" "))
        return (
            f"not valid YAML: bad indentation: this line is indented {_spaces(indent)}, deeper "
            f"than the line above it ({depth}), whose key already has a value",
            _INDENT_HINT,
            indent + 1,
        )
    if problem.startswith("expected <block end>, but found '<block") and exc.context_mark:
        start = exc.context_mark
        return (
            f"not valid YAML: bad indentation: this line is indented {_spaces(indent)}, which "
            f"matches no level above it (the mapping from line {start.line + 1} indents its "
            f"keys by {_spaces(start.column)})",
            _INDENT_HINT,
            indent + 1,
        )
    return None


def _spaces(n: int) -> str:
    return f"{n} space{'s' * (n != 1)}"


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
    """A scenario file with its `extends:` chain merged in (base first, this file wins).

    `extends:` may name only files in the folder of the file that names it, or below (after
    following symlinks), or under a folder listed in the environment variable SIM_EXTENDS_ROOT
    (several are joined by os.pathsep, as in PATH).
    """
    path = Path(path)
    return _load(path, read_yaml(path), [])


def _load(path: Path, doc: Document, stack: list[Path]) -> Document:
    """`doc` (read from `path`) with its `extends:` chain merged in."""
    parent_ref = doc.data.get("extends")
    if parent_ref is None:
        doc.data.pop("extends", None)
        return doc
    here = doc.places.get(("extends",))

    def refuse(message: str, hint: str | None = None) -> ScenarioError:
        return ScenarioError.one(message, here, "extends", hint)

    if not isinstance(parent_ref, str) or not parent_ref.strip():
        raise refuse(f"expected a path to another scenario file, got {parent_ref!r}")
    parent_path = path.parent / parent_ref
    outside = _outside(path.parent, parent_path)
    if outside:
        raise refuse(
            f"'{parent_ref}' {outside} ({path.parent}); extends may only name files in it or below",
            f"to allow another folder, set {EXTENDS_ROOT} to it",
        )
    try:
        raw = _read_bytes(parent_path)
    except _Unreadable as exc:
        if str(exc) == "no such file":
            raise refuse(f"no such file '{parent_ref}' (looked for {parent_path})") from None
        raise refuse(f"'{parent_ref}' {exc}") from None
    chain = [*stack, path]
    if parent_path.resolve() in [p.resolve() for p in chain]:
        # Name the files as the user named them, not by absolute paths that vary by machine.
        raise refuse(f"{_CYCLE}: " + " -> ".join(str(p) for p in [*chain, parent_path]))
    if len(chain) >= MAX_EXTENDS:
        raise refuse(f"extends chain longer than {MAX_EXTENDS} files")
    # Nothing of a file that is not a scenario is quoted back: it may be anybody's file.
    data, builder = _parse(parent_path, raw)
    if not isinstance(data, dict):
        raise refuse(f"'{parent_ref}' is not a scenario: its top level is a {_type(data)}")
    if not SCENARIO_KEYS.intersection(data):
        raise refuse(
            f"'{parent_ref}' is not a scenario: none of its {len(data)} top-level keys is a "
            "scenario's (name, start, months, parameters, stocks, ...)"
        )
    parent_doc = Document(data, builder.places, builder.key_places, [str(parent_path)])
    try:
        parent = _load(parent_path, parent_doc, chain)
    except ScenarioError as exc:
        if exc.problems and exc.problems[0].message.startswith(_CYCLE):
            # Point at this file's `extends:`; the outermost file's wins as this unwinds.
            cycle = Problem(exc.problems[0].message, here, "extends")
            raise ScenarioError([cycle, *exc.problems[1:]]) from None
        raise
    doc.data.pop("extends")
    return _merge(parent, doc)


def _outside(folder: Path, target: Path) -> str | None:
    """Why `target` is out of bounds for a file in `folder`, or None if it may be read."""
    roots = [folder.resolve()]
    roots += [Path(p).resolve() for p in os.environ.get(EXTENDS_ROOT, "").split(os.pathsep) if p]
    try:
        real = target.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the read names it
        real = Path(os.path.abspath(target))
    if any(real.is_relative_to(root) for root in roots):
        return None
    written = Path(os.path.abspath(target))  # .. folded, symlinks not followed
    if any(written.is_relative_to(root) for root in roots):
        return "leads, through a symlink, outside this file's folder"
    return "is outside this file's folder"


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


def extend(parent: Document, data: dict[str, Any], file: str) -> Document:
    """`parent` with `data` merged over it as a file `file` that `extends:` it would be, without
    writing that file (`sim explore` runs its settings so, and saves them as such a file)."""
    return _merge(parent, Document(data, {}, {}, [file]))


def walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) in plain data, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, path + (i,))
