"""Where the apps are in a git tree (pure): chart directories, app definitions, and what a chart keeps.

A chart directory is a directory with a Chart.yaml that is not inside another chart directory (its
charts/ subdirectory holds dependencies, not apps); a `.suspend` file in it hides it (the Olares app
repository's convention). An app definition (tomo format) is a YAML file at `apps/<category>/<app>.yaml`
outside any chart directory. Both are found anywhere under the source's `path`.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubemart.sources.git.remote import TREE, TreeEntry

_DEFINITION = re.compile(r"(^|/)apps/[^/]+/[^/]+\.ya?ml$")


@dataclass
class Layout:
    charts: dict[str, list[TreeEntry]] = field(default_factory=dict)
    """Chart directory ("" for the root) -> its files, paths as in the repository."""
    suspended: list[str] = field(default_factory=list)
    definitions: list[TreeEntry] = field(default_factory=list)
    trees: dict[str, str] = field(default_factory=dict)
    """Directory -> its tree oid, which names its whole content."""


def _parent(path: str) -> str:
    return posixpath.dirname(path)


def _inside(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


def find_layout(entries: Iterable[TreeEntry]) -> Layout:
    files: list[TreeEntry] = []
    trees: dict[str, str] = {}
    for e in entries:
        if e.size == TREE:
            trees[e.path] = e.oid
        else:
            files.append(e)
    chart_dirs = sorted(
        {_parent(e.path) for e in files if posixpath.basename(e.path) == "Chart.yaml"},
        key=lambda d: (d.count("/"), d),
    )
    tops: list[str] = []
    for d in chart_dirs:
        if not any(_inside(d, top) for top in tops):
            tops.append(d)
    layout = Layout(trees=trees)
    suspend = {_parent(e.path) for e in files if posixpath.basename(e.path) == ".suspend"}
    for top in tops:
        if top in suspend:
            layout.suspended.append(top or ".")
        else:
            layout.charts[top] = []
    for e in files:
        owner = next((top for top in tops if _inside(e.path, top)), None)  # tops never nest
        if owner is None:
            if _DEFINITION.search(e.path):
                layout.definitions.append(e)
        elif owner in layout.charts:
            layout.charts[owner].append(e)
    return layout


def relative(path: str, directory: str) -> str:
    return path[len(directory) + 1 :] if directory else path


@dataclass(frozen=True)
class _Rule:
    pattern: str
    negate: bool
    dir_only: bool
    anchored: bool


def parse_helmignore(text: str) -> list[_Rule]:
    """A .helmignore's rules (gitignore-like, as helm reads them), plus helm's default `templates/.?*`."""
    rules = [_Rule("templates/.?*", False, False, True)]
    for raw in text.splitlines()[:1000]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.strip("/") if dir_only else line.lstrip("/")
        if line:
            rules.append(_Rule(line, negate, dir_only, "/" in line))
    return rules


def _matches(rule: _Rule, path: str, is_dir: bool) -> bool:
    if rule.dir_only and not is_dir:
        return False
    target = path if rule.anchored else posixpath.basename(path)
    pattern = rule.pattern.replace("**/", "*") if "**" in rule.pattern else rule.pattern
    return fnmatch.fnmatchcase(target, pattern)


def ignored(rules: list[_Rule], relpath: str) -> bool:
    """Whether helm package would leave `relpath` (relative to the chart directory) out."""
    parts = relpath.split("/")
    for depth in range(1, len(parts) + 1):
        candidate = "/".join(parts[:depth])
        is_dir = depth < len(parts)
        verdict = False
        for rule in rules:
            if _matches(rule, candidate, is_dir):
                verdict = not rule.negate
        if verdict:
            return True
    return False
