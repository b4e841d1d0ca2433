"""YAML from people and servers we do not trust, read into plain JSON-compatible data (pure).

PyYAML's loaders trust their input: aliases share one object, so a few hundred bytes of nested
aliases ("billion laughs") become billions of nodes the moment anything walks or serialises the
result; duplicate keys silently keep the last one; dates, `!!binary` and `!!set` become Python
objects that JSON (and so helm) cannot take. This reader builds the document from libyaml's event
stream without recursion and refuses, with a message naming the line, whatever breaks a bound:

- expanded size: every alias counts the nodes it stands for, and the document may hold no more
  nodes, aliases expanded, than `max_nodes` (by default about one per byte of input, so aliases can
  never make a document bigger than it looks);
- nesting depth, aliases expanded;
- wall-clock time, checked as it goes.

What it returns is what Helm (sigs.k8s.io/yaml, YAML 1.1) would see as JSON: mappings with string
keys, lists, strings, ints, finite floats, booleans and null. Timestamps stay strings, as they do for
Helm; a key that is not a string (`1:`, `true:`) becomes its string form; `<<` merge keys merge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Limits", "UnsafeYAML", "load", "load_all"]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_VALUE = "tag:yaml.org,2002:value"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _VALUE}
_REFUSED_TAG_NAMES = {
    "tag:yaml.org,2002:binary": "!!binary",
    "tag:yaml.org,2002:set": "!!set",
    "tag:yaml.org,2002:omap": "!!omap",
    "tag:yaml.org,2002:pairs": "!!pairs",
}
_CHECK_EVERY = 4096
"""Events between two looks at the clock."""


class UnsafeYAML(ValueError):
    """The document is not YAML, or breaks a bound; the message says which and where."""


@dataclass(frozen=True)
class Limits:
    max_depth: int = 64
    """Deepest nesting of mappings and lists, aliases expanded."""
    max_nodes: int | None = None
    """Most nodes, aliases expanded; None: one per byte of input, and at least 10,000."""
    max_aliases: int = 10_000
    seconds: float = 5.0
    """Wall-clock budget for reading one input."""


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass
class _Node:
    """A mapping or list under construction, with what it costs once expanded."""

    value: dict[str, Any] | list[Any]
    line: int
    size: int = 1
    depth: int = 1
    key: Any = field(default=None)
    """For a mapping: the key read, waiting for its value (`_NO_KEY` when none)."""
    key_line: int = 0
    merges: list[dict[str, Any]] = field(default_factory=list)
    explicit: set[str] = field(default_factory=set)
    anchor: str | None = None


_NO_KEY = object()
_MERGE_KEY = object()


def load(text: str | bytes, *, limits: Limits | None = None, source: str = "the document") -> Any:
    """The single document in `text`, or None when it is empty. Raises UnsafeYAML."""
    docs = list(load_all(text, limits=limits, source=source))
    if len(docs) > 1:
        raise UnsafeYAML(f"{source} holds {len(docs)} YAML documents where one was expected")
    return docs[0] if docs else None


def load_all(
    text: str | bytes, *, limits: Limits | None = None, source: str = "the document"
) -> Iterator[Any]:
    """Every document in `text`. Raises UnsafeYAML."""
    limits = limits or Limits()
    budget = limits.max_nodes if limits.max_nodes is not None else max(10_000, len(text))
    reader = _Reader(limits, budget, source)
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        while loader.check_event():
            done = reader.feed(loader.get_event())
            if done is not _PENDING:
                yield done
    except yaml.YAMLError as exc:
        raise UnsafeYAML(f"{source} is not valid YAML: {_describe(exc)}") from None
    finally:
        loader.dispose()


_PENDING = object()


class _Reader:
    def __init__(self, limits: Limits, budget: int, source: str) -> None:
        self.limits = limits
        self.budget = budget
        self.source = source
        self.deadline = time.monotonic() + limits.seconds
        self.events = 0
        self.nodes = 0
        self.aliases = 0
        self.stack: list[_Node] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        """anchor -> (value, expanded size, depth)."""
        self.document: Any = _PENDING

    def fail(self, what: str, line: int) -> UnsafeYAML:
        return UnsafeYAML(f"{self.source}: {what} (line {line + 1})")

    def feed(self, event: yaml.Event) -> Any:
        self.events += 1
        if self.events % _CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise self.fail(f"reading took longer than {self.limits.seconds:g}s", _line(event))
        if isinstance(event, yaml.DocumentStartEvent):
            self.document = _PENDING
            self.anchors = {}
            return _PENDING
        if isinstance(event, yaml.DocumentEndEvent):
            done, self.document = self.document, _PENDING
            return None if done is _PENDING else done
        if isinstance(event, yaml.ScalarEvent):
            self.place(self.scalar(event), 1, 0, event)
            return _PENDING
        if isinstance(event, yaml.AliasEvent):
            self.alias(event)
            return _PENDING
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self.start(event)
            return _PENDING
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self.end(event)
        return _PENDING

    # --- nodes ---------------------------------------------------------------------------------

    def count(self, size: int, line: int) -> None:
        self.nodes += size
        if self.nodes > self.budget:
            raise self.fail(
                f"the document expands to more than {self.budget} nodes (aliases counted expanded); "
                "it is too large or its aliases multiply it",
                line,
            )

    def start(self, event: yaml.CollectionStartEvent) -> None:
        line = _line(event)
        tag = event.tag
        is_map = isinstance(event, yaml.MappingStartEvent)
        if tag not in (None, "!", _MAP if is_map else _SEQ):
            raise self.fail(f"the tag {_tag_name(tag)} is not allowed; write plain YAML", line)
        if len(self.stack) + 1 > self.limits.max_depth:
            raise self.fail(f"nesting is deeper than {self.limits.max_depth} levels", line)
        self.count(1, line)
        node = _Node({} if is_map else [], line, anchor=event.anchor)
        if is_map:
            node.key = _NO_KEY
        self.stack.append(node)

    def end(self, event: yaml.Event) -> None:
        node = self.stack.pop()
        if isinstance(node.value, dict):
            if node.key is not _NO_KEY:
                raise self.fail("a mapping key has no value", node.key_line)
            for merged in node.merges:
                for k, v in merged.items():
                    if k not in node.explicit and k not in node.value:
                        node.value[k] = v
        if node.anchor is not None:
            self.anchors[node.anchor] = (node.value, node.size, node.depth)
        self.place(node.value, node.size, node.depth, event)

    def alias(self, event: yaml.AliasEvent) -> None:
        line = _line(event)
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise self.fail(f"more than {self.limits.max_aliases} aliases", line)
        found = self.anchors.get(event.anchor or "")
        if found is None:
            if any(n.anchor == event.anchor for n in self.stack):
                raise self.fail(f"the alias *{event.anchor} refers to a node that contains it", line)
            raise self.fail(f"the alias *{event.anchor} names no anchor defined before it", line)
        value, size, depth = found
        if len(self.stack) + depth > self.limits.max_depth:
            raise self.fail(f"nesting is deeper than {self.limits.max_depth} levels (aliases expanded)", line)
        self.count(size, line)
        self.place(value, size, depth, event)

    def scalar(self, event: yaml.ScalarEvent) -> Any:
        line = _line(event)
        tag = event.tag
        if tag in (None, "!"):
            tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        if tag in _REFUSED_TAG_NAMES:
            raise self.fail(f"{_REFUSED_TAG_NAMES[tag]} values are not allowed; write plain YAML", line)
        if tag not in _SCALAR_TAGS and tag != _MERGE:
            raise self.fail(f"the tag {_tag_name(tag)} is not allowed; write plain YAML", line)
        if tag == _MERGE:
            return _MERGE_KEY
        if tag in (_STR, _TIMESTAMP, _VALUE):
            # Helm reads dates as strings too (YAML to JSON keeps their text).
            value: Any = event.value
        else:
            node = yaml.ScalarNode(tag, event.value)
            try:
                value = {
                    _INT: _CONSTRUCTOR.construct_yaml_int,
                    _FLOAT: _CONSTRUCTOR.construct_yaml_float,
                    _BOOL: _CONSTRUCTOR.construct_yaml_bool,
                    _NULL: _CONSTRUCTOR.construct_yaml_null,
                }[tag](node)
            except (ValueError, yaml.YAMLError) as exc:
                raise self.fail(f"{event.value!r} is not a valid {_tag_name(tag)}: {exc}", line) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(f"{event.value!r} is not a finite number, which JSON cannot hold", line)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0)
        self.count(1, line)
        return value

    def place(self, value: Any, size: int, depth: int, event: yaml.Event) -> None:
        """Put a finished node into its parent (sizes were counted where nodes were made)."""
        if not self.stack:
            if value is _MERGE_KEY:
                value = "<<"
            self.document = value
            return
        parent = self.stack[-1]
        parent.size += size
        parent.depth = max(parent.depth, depth + 1)
        if isinstance(parent.value, list):
            parent.value.append("<<" if value is _MERGE_KEY else value)
            return
        if parent.key is _NO_KEY:
            parent.key = self.key_of(value, event)
            parent.key_line = _line(event)
            return
        key, parent.key = parent.key, _NO_KEY
        if key is _MERGE_KEY:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise self.fail("a << merge key must be given a mapping or a list of mappings", _line(event))
            parent.merges.extend(sources)
            return
        if key in parent.explicit:
            raise self.fail(f"the key {key!r} appears twice in one mapping", parent.key_line)
        parent.explicit.add(key)
        parent.value[key] = value

    def key_of(self, value: Any, event: yaml.Event) -> Any:
        if value is _MERGE_KEY or isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            raise self.fail(
                "a mapping key is itself a mapping or list; keys must be plain scalars", _line(event)
            )
        # sigs.k8s.io/yaml: a key that is not a string is used as its text.
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _line(event: yaml.Event) -> int:
    mark = getattr(event, "start_mark", None)
    return int(mark.line) if mark is not None else 0


def _tag_name(tag: str | None) -> str:
    if tag and tag.startswith("tag:yaml.org,2002:"):
        return "!!" + tag.removeprefix("tag:yaml.org,2002:")
    return str(tag)


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return f"{what} (line {mark.line + 1}, column {mark.column + 1})"
        return what
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
