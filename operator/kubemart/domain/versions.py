"""Chart version resolution for ``AppInstall.spec.version``.

A constraint is what a Helm user would pass to ``helm install --version``: an exact version
(``1.2.3``, ``v1.2.3``, ``1.3.0-rc.1``) or a range in the dialect of Masterminds/semver, the Go
library Helm resolves versions with:

* caret ``^1.2`` (same major; same minor below 1.0), tilde ``~1.2.0`` (same minor), ``~>1.2``;
* comparisons ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` (and ``=>``, ``=<``), an optional
  space after the operator, an optional ``v`` before the version;
* wildcards ``1.2.x``, ``1.x``, ``1.*``, ``*``, and partial versions (``1.2`` means ``1.2.x``);
* hyphen ranges ``1.2 - 1.4`` (inclusive; a partial upper bound covers its whole minor);
* AND by whitespace or comma (``>=1 <2``, ``>=1.0, <2.0``), OR by ``||``.

Prereleases follow Masterminds (v3.3 and later, what current Helm ships): an ``||`` alternative
only admits prerelease versions when one of its comparators names a prerelease, so ``*`` never
picks ``1.3.0-rc.1``, ``~1.3.0-0`` or ``1.3.0-rc.1`` can, and Helm's own ``--devel`` range
``>0.0.0-0`` admits every prerelease. An empty constraint means "the newest stable version".

Why the ``semver`` package and not an npm-range library
-------------------------------------------------------
``semver`` (python-semver: typed, maintained, already installed as pyhelm3's dependency) does
the part that is easy to get subtly wrong: validating versions and SemVer 2 precedence, including
prerelease ordering and ignoring build metadata. It has no range syntax, so this module splits
the range grammar into comparators and applies Masterminds' rule for each operator, checked
against cases from Masterminds' own test suite.

The Python range libraries (``semantic_version.NpmSpec``, ``node-semver``) speak npm's dialect,
which differs from Helm's where users notice: npm admits a prerelease only when a comparator names
a prerelease of the *same* ``major.minor.patch``, so ``>0.0.0-0`` (Helm's ``--devel``) would find
no 1.x prerelease and ``^1.2.0-beta`` would skip ``1.4.0-rc.1``; npm lacks ``!=``, ``=>``, ``=<``
and comma-AND; ``NpmSpec`` rejects ``>= 1.2``. Bridging that needs a tokenizer anyway, and the
result would still resolve some constraints differently from ``helm install --version``. Neither
library ships type information either.

Deliberate differences from Masterminds, all in constraints nobody means: ``*`` under ``^``, ``~``
or ``=`` matches any version (Masterminds' ``^*`` only matches 0.0.0), and ``>*``, ``<*``,
``<=*``, ``!=*`` are rejected instead of being given odd meanings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import semver

__all__ = [
    "Comparator",
    "Constraint",
    "InvalidConstraint",
    "is_valid_constraint",
    "parse_constraint",
    "resolve_version",
    "sort_versions_desc",
]

# Masterminds' limit; a spec field has no business being longer.
MAX_CONSTRAINT_LENGTH = 512

_EXAMPLES = "write e.g. 1.2.3, ^1.2, ~1.2.0, >=1.0 <2.0, 1.2.x or 1.2 - 1.4"

# Longest first, so ">=" is not read as ">" followed by "=1.2".
_OPERATOR = r"!=|>=|=>|<=|=<|~>|[=<>~^]"
_ALIASES = {"": "=", "=>": ">=", "=<": "<=", "~>": "~"}
_WILDCARDS = frozenset({"x", "X", "*"})
_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
# A version ends at whitespace, a comma or the end; this also rejects "1.2.3.4" whole.
_END = r"(?=[\s,]|$)"


def _version_pattern(name: str) -> str:
    part = r"\d+|[xX*]"
    return (
        rf"(?P<{name}>v?(?P<{name}_major>{part})(?:\.(?P<{name}_minor>{part}))?"
        rf"(?:\.(?P<{name}_patch>{part}))?"
        rf"(?:-(?P<{name}_pre>{_IDENTIFIERS}))?(?:\+(?P<{name}_build>{_IDENTIFIERS}))?)"
    )


_HYPHEN_RANGE = re.compile(rf"{_version_pattern('low')}\s+-\s+{_version_pattern('high')}{_END}")
_COMPARISON = re.compile(rf"(?P<op>{_OPERATOR})?\s*{_version_pattern('v')}{_END}")
_OPERATOR_ONLY = re.compile(rf"(?:{_OPERATOR})")
_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_TOKEN = re.compile(r"[^\s,]+")


class InvalidConstraint(ValueError):
    """A version constraint that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Comparator:
    """One operator applied to one (possibly partial) version, e.g. ``>=1.2`` or ``~1.2.x``."""

    operator: str
    """Canonical operator: one of ``= != > >= < <= ~ ^``."""
    version: semver.Version
    """The version with wildcard and missing parts set to 0."""
    precision: int
    """Parts given before a wildcard or the end: 0 for ``*``, 1 for ``1.x``, 2 for ``1.2``, 3 for ``1.2.3``."""
    text: str
    """The comparator as written, with the canonical operator (a hyphen range gives two)."""

    @property
    def names_prerelease(self) -> bool:
        return self.version.prerelease is not None

    def matches(self, v: semver.Version) -> bool:
        """Whether ``v`` satisfies this comparator, prerelease gating aside (see `Constraint`)."""
        c = self.version
        exact = self.precision == 3
        match self.operator:
            case "=":
                return v.compare(c) == 0 if exact else self._tilde(v)
            case "~":
                return self._tilde(v)
            case "^":
                return self._caret(v)
            case "!=":
                return self._not_equal(v)
            case ">":
                if exact:
                    return v > c
                if v.major != c.major:
                    return v.major > c.major
                # ">1" means "from 2.0.0", ">1.2" means "from 1.3.0".
                return self.precision == 2 and v.minor > c.minor
            case ">=":
                return v >= c
            case "<":
                return v < c
            case "<=":
                if exact:
                    return v <= c
                if v.major != c.major:
                    return v.major < c.major
                # "<=1.4" still admits 1.4.9: the partial bound covers its whole minor.
                return self.precision == 1 or v.minor <= c.minor
        raise AssertionError(f"unknown operator {self.operator!r}")  # pragma: no cover

    def _tilde(self, v: semver.Version) -> bool:
        c = self.version
        if self.precision == 0:
            return True
        if v < c:
            return False
        # Masterminds reads "~0.0.0" as "anything from 0.0.0 on".
        if self.precision == 3 and (c.major, c.minor, c.patch) == (0, 0, 0):
            return True
        return v.major == c.major and (self.precision == 1 or v.minor == c.minor)

    def _caret(self, v: semver.Version) -> bool:
        c = self.version
        if self.precision == 0:
            return True
        if v < c:
            return False
        # Below 1.0 the leftmost non-zero part given is the compatibility boundary.
        if c.major > 0 or self.precision == 1:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.precision == 2:
            return v.minor == c.minor
        if v.minor > 0:
            return False
        return v.patch == c.patch

    def _not_equal(self, v: semver.Version) -> bool:
        c = self.version
        if self.precision == 3:
            return v.compare(c) != 0
        if v.major != c.major:
            return True
        if self.precision == 1:
            return False
        if v.minor != c.minor:
            return True
        # "!=1.2.x-beta" lets only other prereleases of 1.2 through, as in Masterminds.
        return (v.prerelease or "") != (c.prerelease or "")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed constraint: ``||``-separated alternatives, each a conjunction of comparators."""

    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def allows(self, version: semver.Version) -> bool:
        """Whether a parsed version satisfies the constraint."""
        for group in self.alternatives:
            if version.prerelease is not None and not any(c.names_prerelease for c in group):
                continue
            if all(c.matches(version) for c in group):
                return True
        return False

    def matches(self, version: str) -> bool:
        """Whether a version string satisfies the constraint; an invalid version never does."""
        parsed = _parse_version(version)
        return parsed is not None and self.allows(parsed)

    def __str__(self) -> str:
        return " || ".join(" ".join(str(c) for c in group) for group in self.alternatives)


def parse_constraint(text: str) -> Constraint:
    """Parse a Helm (Masterminds) version constraint; empty text means any stable version.

    Raises `InvalidConstraint` with a message saying what is wrong.
    """
    if len(text) > MAX_CONSTRAINT_LENGTH:
        raise _invalid(text[:40] + "...", f"longer than {MAX_CONSTRAINT_LENGTH} characters")
    stripped = text.strip()
    if not stripped:
        stripped = "*"
    groups = [_parse_group(part.strip(), text) for part in stripped.split("||")]
    return Constraint(text=text, alternatives=tuple(groups))


def is_valid_constraint(text: str) -> bool:
    """Whether `parse_constraint` accepts ``text``."""
    try:
        parse_constraint(text)
    except InvalidConstraint:
        return False
    return True


def resolve_version(constraint: str | None, available: Iterable[str]) -> str | None:
    """The newest entry of ``available`` that satisfies ``constraint``, exactly as spelled there.

    ``None`` or an empty constraint picks the newest stable version. Entries that are not semantic
    versions are skipped. Like ``helm install --version``, an entry spelled exactly like the
    constraint wins outright; among entries of equal precedence (``1.2.3`` and ``v1.2.3``, or
    differing build metadata) the first one listed wins. Returns None when nothing matches and
    raises `InvalidConstraint` for a constraint that cannot be parsed.
    """
    wanted = (constraint or "").strip()
    parsed = parse_constraint(wanted)
    best: tuple[semver.Version, str] | None = None
    for raw in available:
        version = _parse_version(raw)
        if version is None:
            continue
        if wanted and raw == wanted:
            return raw
        if parsed.allows(version) and (best is None or version > best[0]):
            best = (version, raw)
    return None if best is None else best[1]


def sort_versions_desc(versions: Iterable[str]) -> list[str]:
    """Valid versions newest first (ties keep their order); invalid entries are dropped."""
    parsed = [(v, raw) for raw in versions if (v := _parse_version(raw)) is not None]
    parsed.sort(key=lambda pair: pair[0], reverse=True)
    return [raw for _, raw in parsed]


def _parse_version(text: str) -> semver.Version | None:
    # Helm loads chart versions the lenient way (Masterminds' NewVersion): "v1.2" is 1.2.0.
    if not isinstance(text, str):
        return None  # catalogs built from YAML carry floats like 1.2
    try:
        return semver.Version.parse(text.removeprefix("v"), optional_minor_and_patch=True)
    except ValueError:
        return None


def _parse_group(group: str, text: str) -> tuple[Comparator, ...]:
    if not group:
        raise _invalid(text, "'||' needs a range on both sides")
    comparators: list[Comparator] = []
    pos = 0
    while True:
        if hyphen := _HYPHEN_RANGE.match(group, pos):
            comparators.append(_comparator(">=", hyphen, "low", text))
            comparators.append(_comparator("<=", hyphen, "high", text))
            pos = hyphen.end()
        elif comparison := _COMPARISON.match(group, pos):
            comparators.append(_comparator(comparison["op"] or "", comparison, "v", text))
            pos = comparison.end()
        else:
            raise _invalid(text, _explain(group, pos))
        if pos == len(group):
            return tuple(comparators)
        separator = _SEPARATOR.match(group, pos)
        assert separator is not None  # every version pattern ends before whitespace or a comma
        pos = separator.end()
        if pos == len(group):
            raise _invalid(text, "it ends with a comma")


def _comparator(op: str, match: re.Match[str], name: str, text: str) -> Comparator:
    operator = _ALIASES.get(op, op)
    parts = [match[f"{name}_major"], match[f"{name}_minor"], match[f"{name}_patch"]]
    precision = next((i for i, p in enumerate(parts) if p is None or p in _WILDCARDS), 3)
    if precision == 0 and operator in {">", "<", "<=", "!="}:
        raise _invalid(
            text,
            f"'{op}{match[name]}' is not a useful range (a wildcard version only goes with =, ~, ^ or >=)",
        )
    numbers = [*parts[:precision], *["0"] * (3 - precision)]
    normalized = ".".join(numbers)
    if pre := match[f"{name}_pre"]:
        normalized += f"-{pre}"
    # Build metadata only pins an exact version; Masterminds drops it from partial ones too.
    if (build := match[f"{name}_build"]) and precision == 3:
        normalized += f"+{build}"
    try:
        version = semver.Version.parse(normalized)
    except ValueError:
        reason = f"{match[name]!r} is not a valid semantic version (no leading zeros in numbers)"
        raise _invalid(text, reason) from None
    shown = f"{'' if operator == '=' and not op else operator}{match[name]}"
    return Comparator(operator=operator, version=version, precision=precision, text=shown)


def _explain(group: str, pos: int) -> str:
    if (operator := _OPERATOR_ONLY.match(group, pos)) is not None:
        after = _TOKEN.match(group[operator.end() :].lstrip())
        if after is None:
            return f"{operator[0]!r} must be followed by a version ({_EXAMPLES})"
        return f"{after[0]!r} after {operator[0]!r} is not a version ({_EXAMPLES})"
    token_match = _TOKEN.match(group, pos)
    token = token_match[0] if token_match else group[pos:]
    if token.startswith("|"):
        return f"{token!r}: alternatives are separated by '||'"
    if token == "-":
        return "a hyphen range joins two plain versions, as in '1.2 - 1.4'"
    if token.startswith("-"):
        return f"{token!r}: a hyphen range needs spaces around the '-', as in '1.2 - 1.4'"
    return f"{token!r} is not a version or comparison ({_EXAMPLES})"


def _invalid(text: str, reason: str) -> InvalidConstraint:
    return InvalidConstraint(f"invalid version constraint {text!r}: {reason}")
