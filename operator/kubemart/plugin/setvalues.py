"""Helm's ``--set`` syntax, read the way helm reads it (``pkg/strvals``), so that a line that works
with ``helm install --set`` means the same thing to ``kubectl market install --set``.

``a.b=c`` nests maps, ``a[0]=x`` and ``a[0].b=y`` index lists, ``a={x,y}`` is a list, commas
separate several assignments, a backslash escapes the next character. Values are typed like
helm types them: ``true``/``false`` (any case) are booleans, ``null`` is null (which asks helm to
drop a chart default), a decimal integer without a leading zero is an integer, and anything else
(``1.5``, ``007``, ``1e3``) stays a string. ``--set-string`` keeps every value a string.

Assignments go into the values built so far (from ``-f`` files), as helm's do: ``a[1]=x`` changes
the second item of a list read from a file instead of replacing the list. `values_from_flags`
builds the whole thing in helm's order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubemart.domain.values import merge_values, parse_values_document

__all__ = ["InvalidSet", "apply_sets", "parse_set", "typed_value", "values_from_flags"]

# Helm's limits, which keep a typo like a[99999999]=x from allocating a huge list.
MAX_INDEX = 65536
MAX_NESTING = 30
_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


class InvalidSet(ValueError):
    """A ``--set`` line that cannot be read; the message quotes it and says what is wrong."""


class _EndOfInput(Exception):
    """The line is used up: the normal end of parsing."""


def typed_value(text: str) -> Any:
    """Pure: the value helm's ``--set`` gives `text`."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _INT.fullmatch(text):
        number = int(text)
        if number in _INT64:
            return number
    return text


def parse_set(line: str, *, as_string: bool = False) -> dict[str, Any]:
    """Pure: the values one ``--set`` line gives on its own."""
    values: dict[str, Any] = {}
    _Parser(line, values, as_string=as_string).parse()
    return values


def apply_sets(
    values: Mapping[str, Any], lines: Iterable[str], *, as_string: bool = False, flag: str = "--set"
) -> dict[str, Any]:
    """Pure: a copy of `values` with each line applied in order; `flag` names the option in errors."""
    out = copy.deepcopy(dict(values))
    for line in lines:
        try:
            _Parser(line, out, as_string=as_string).parse()
        except InvalidSet as exc:
            raise InvalidSet(f"{flag} {line!r}: {exc}") from None
    return out


def values_from_flags(
    files: Sequence[tuple[str, str]], sets: Iterable[str] = (), set_strings: Iterable[str] = ()
) -> dict[str, Any]:
    """Pure: values as ``helm install`` builds them from its flags: the ``-f`` documents (given as
    (name, text)) merged in order, maps deeply and lists replaced, then each ``--set``, then each
    ``--set-string``. Raises `InvalidValues` naming a bad file, `InvalidSet` quoting a bad line."""
    values = merge_values(
        [parse_values_document(text, source=f"the values file {name}") for name, text in files]
    )
    values = apply_sets(values, sets, flag="--set")
    return apply_sets(values, set_strings, as_string=True, flag="--set-string")


class _Parser:
    def __init__(self, text: str, data: dict[str, Any], *, as_string: bool) -> None:
        self.text = text
        self.pos = 0
        self.data = data
        self.as_string = as_string

    def parse(self) -> None:
        try:
            while True:
                self._key(self.data, 0)
        except _EndOfInput:
            return

    # --- scanning --------------------------------------------------------------------------------

    def _until(self, stops: str) -> tuple[str, str | None]:
        """Characters up to one of `stops` (consumed, returned second; None at the end), unescaped."""
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char in stops:
                return "".join(out), char
            if char == "\\":
                if self.pos >= len(self.text):
                    return "".join(out), None
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return "".join(out), None

    def _value(self, text: str) -> Any:
        return text if self.as_string else typed_value(text)

    # --- grammar -----------------------------------------------------------------------------------

    def _key(self, data: dict[str, Any], level: int) -> None:
        name, last = self._until("=[,.")
        if last is None:
            if not name:
                raise _EndOfInput
            raise InvalidSet(f"key {name!r} has no value; write {name}=VALUE")
        if last == ",":
            raise InvalidSet(f"key {name!r} has no value (cannot end with ,)")
        if last == "[":
            index = self._index()
            # A null read from a file means "unset", so it may become a list or map here.
            current = data.get(name)
            if current is None:
                current = []
            if not isinstance(current, list):
                raise InvalidSet(f"{name} is {_kind(current)} in the values so far, not a list")
            _set(data, name, self._list_item(list(current), index, level))
            return
        if last == ".":
            level += 1
            if level > MAX_NESTING:
                raise InvalidSet(f"keys nest more than {MAX_NESTING} levels deep")
            inner = data.get(name)
            if inner is None:
                inner = {}
            if not isinstance(inner, dict):
                raise InvalidSet(f"{name} is {_kind(inner)} in the values so far, not a map")
            try:
                self._key(inner, level)
            except _EndOfInput:
                raise InvalidSet(f"key map {name!r} has no value") from None
            if not inner:
                raise InvalidSet(f"key map {name!r} has no value")
            _set(data, name, inner)
            return
        # last == "="
        _set(data, name, self._assigned())

    def _assigned(self) -> Any:
        """The value after ``=``: a ``{a,b}`` list, or a scalar up to the next comma."""
        if self.pos >= len(self.text):
            return ""
        if self.text[self.pos] == "{":
            self.pos += 1
            return self._list_literal()
        text, _ = self._until(",")
        return self._value(text)

    def _list_literal(self) -> list[Any]:
        items: list[Any] = []
        while True:
            text, last = self._until(",}")
            if last is None:
                raise InvalidSet("list must terminate with '}'")
            items.append(self._value(text))
            if last == "}":
                if self.pos < len(self.text) and self.text[self.pos] == ",":
                    self.pos += 1
                return items

    def _index(self) -> int:
        text, last = self._until("]")
        if last is None:
            raise InvalidSet(f"index [{text} is not closed with ']'")
        try:
            index = int(text)
        except ValueError:
            raise InvalidSet(f"list index {text!r} is not a number") from None
        if index < 0:
            raise InvalidSet(f"negative index {index} is not allowed")
        if index > MAX_INDEX:
            raise InvalidSet(f"index {index} is greater than the maximum of {MAX_INDEX}")
        return index

    def _list_item(self, items: list[Any], index: int, level: int) -> list[Any]:
        rest, last = self._until("[.=")
        if rest:
            raise InvalidSet(f"unexpected {rest!r} after the list index [{index}]")
        if last is None:
            raise InvalidSet(f"list item [{index}] has no value; write [{index}]=VALUE")
        if last == "=":
            return _set_index(items, index, self._assigned())
        if last == "[":
            inner_index = self._index()
            existing = items[index] if index < len(items) else None
            if existing is not None and not isinstance(existing, list):
                raise InvalidSet(f"item [{index}] is {_kind(existing)} in the values so far, not a list")
            nested = self._list_item(list(existing or []), inner_index, level)
            return _set_index(items, index, nested)
        # last == "."
        existing = items[index] if index < len(items) else None
        inner = existing if isinstance(existing, dict) else {}
        try:
            self._key(inner, level)
        except _EndOfInput:
            raise InvalidSet(f"list item [{index}] has no key after '.'") from None
        return _set_index(items, index, inner)


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    # Helm ignores an empty key (`=x` or `a..b=x`) rather than failing.
    if key:
        data[key] = value


def _set_index(items: list[Any], index: int, value: Any) -> list[Any]:
    if len(items) <= index:
        items.extend([None] * (index + 1 - len(items)))
    items[index] = value
    return items


def _kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case dict():
            return "a map"
        case list():
            return "a list"
        case bool():
            return f"the boolean {value!r}".lower()
        case int() | float():
            return f"the number {value!r}"
        case str():
            return f"the string {value!r}"
    return f"a {type(value).__name__}"
