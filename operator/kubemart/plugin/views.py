"""Pure decisions and views of the plugin: which apps a search finds, which app a name means, the
AppInstall an install creates, whether a wait is over, and the rows and text that are printed.

Objects are the dicts the API server returns (camelCase), so that ``-o yaml`` shows them as stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubemart.plugin.table import NONE, human_age, parse_time, render_table

__all__ = [
    "AppChoice",
    "WaitState",
    "app_info",
    "appinstall_body",
    "choose_app",
    "condition",
    "history_table",
    "install_state",
    "installs_table",
    "matches",
]

# The API this client speaks (kubemart.models.resource says the same; a unit test checks it).
GROUP = "kubemart.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Obj = Mapping[str, Any]
SEARCH_HINT = "run 'kubectl market search' to see the apps on offer"


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    for cond in _status(obj).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def price_text(app: Obj) -> str:
    price = _spec(app).get("price")
    if not price:
        return "free"
    return f"{price.get('amount', '?')} {price.get('currency', '')}".strip()


# --- the catalog ---------------------------------------------------------------------------------


def matches(app: Obj, *, text: str | None, category: str | None) -> bool:
    """Pure: whether a MarketApp is found by `text` (in name, title, description or keywords,
    ignoring case) and is in `category` (ignoring case); None matches everything."""
    spec = _spec(app)
    if category and category.lower() not in (c.lower() for c in spec.get("categories") or []):
        return False
    if not text:
        return True
    needle = text.lower()
    haystack = [spec.get("app"), spec.get("title"), spec.get("description"), *(spec.get("keywords") or [])]
    return any(needle in str(field).lower() for field in haystack if field)


@dataclass(frozen=True)
class AppChoice:
    """The outcome of resolving an app name: one app, or why there is none (a one-line error)."""

    app: dict[str, Any] | None
    error: str | None = None


def choose_app(
    name: str, apps: Sequence[Obj], *, source: str | None, priorities: Mapping[str, int] | None = None
) -> AppChoice:
    """Pure: the MarketApp `name` means among `apps` (those of that name, from any source).

    With `source` given, only that source's app counts. Otherwise one source is the default when
    it alone has the highest priority (API: MarketSource.spec.priority); with no such source the
    name is ambiguous and the error lists the sources to choose from. `priorities` maps source
    names to priorities; None means they could not be read, and every tie is ambiguous.
    """
    found = [a for a in apps if _spec(a).get("app") == name]
    if source is not None:
        found = [a for a in found if _spec(a).get("source") == source]
        if not found:
            offered = sorted(_spec(a).get("source", "") for a in apps if _spec(a).get("app") == name)
            also = f" (it is offered by {', '.join(offered)})" if offered else f"; {SEARCH_HINT}"
            return AppChoice(None, f"app {name!r} not found in source {source!r}{also}")
    if not found:
        return AppChoice(None, f"app {name!r} not found; {SEARCH_HINT}")
    if len(found) == 1:
        return AppChoice(dict(found[0]))
    if priorities is not None:
        ranked = sorted(found, key=lambda a: priorities.get(_spec(a).get("source", ""), 0), reverse=True)
        top = priorities.get(_spec(ranked[0]).get("source", ""), 0)
        if priorities.get(_spec(ranked[1]).get("source", ""), 0) < top:
            return AppChoice(dict(ranked[0]))
    sources = sorted(_spec(a).get("source", "") for a in found)
    return AppChoice(
        None,
        f"app {name!r} is offered by several sources ({', '.join(sources)}); "
        f"choose one with --source, e.g. --source {sources[0]}",
    )


def app_info(app: Obj, *, installs: Iterable[Obj] = ()) -> str:
    """Pure: a MarketApp described for a person, like ``kubectl describe``."""
    spec = _spec(app)
    developer = spec.get("developer") or {}
    fields = [
        ("Name", spec.get("app")),
        ("Source", spec.get("source")),
        ("Title", spec.get("title")),
        ("Description", spec.get("description")),
        ("Developer", developer.get("name")),
        ("Home", spec.get("home")),
        ("Icon", spec.get("icon")),
        ("Categories", ", ".join(spec.get("categories") or [])),
        ("Keywords", ", ".join(spec.get("keywords") or [])),
        ("License", spec.get("license")),
        ("Maintainers", ", ".join(_maintainer(m) for m in spec.get("maintainers") or [])),
        ("Price", price_text(app)),
        ("Requirements", _requirements(spec.get("requirements") or {})),
        ("Limits", _limits((spec.get("requirements") or {}).get("limits") or {})),
        ("Dependencies", ", ".join(_dependency(d) for d in spec.get("dependencies") or [])),
        ("Latest", spec.get("latestVersion")),
    ]
    if spec.get("manifest"):
        fields.insert(2, ("Manifest", spec.get("manifest")))
    if spec.get("deprecated"):
        fields.insert(2, ("Deprecated", "yes: the chart says it is no longer maintained"))
    if spec.get("prerelease"):
        fields.insert(2, ("Pre-release", "yes: the newest version is marked as a pre-release"))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label + ':':<{width}}{_printable(str(value)) if value else NONE}" for label, value in fields]
    lines.extend(
        _listed("Links:", [[link.get("name", ""), link.get("url", "")] for link in spec.get("links") or []])
    )
    lines.extend(
        _listed(
            "Entrances:",
            [
                [
                    e.get("name", ""),
                    e.get("title") or NONE,
                    f"{e.get('host') or NONE}:{e.get('port') or NONE}",
                ]
                for e in spec.get("entrances") or []
            ],
            headers=["name", "title", "service"],
        )
    )
    versions = spec.get("versions") or []
    lines.extend(
        _listed(
            "Versions:",
            [[v.get("version", ""), v.get("appVersion") or NONE, v.get("created") or NONE] for v in versions],
            headers=["version", "app version", "created"],
            always=True,
        )
    )
    installed = [f"{_meta(i).get('namespace')}/{_meta(i).get('name')}" for i in installs]
    lines.append(f"{'Installed:':<{width}}{', '.join(installed) or NONE}")
    lines.append(
        f"{'Install:':<{width}}kubectl market install {spec.get('app')} --source {spec.get('source')}"
    )
    return "\n".join(lines)


# Catalog text came from a chart repository: no terminal escape sequence reaches the screen.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(" ", text)


def _listed(
    title: str, rows: list[list[str]], *, headers: list[str] | None = None, always: bool = False
) -> list[str]:
    if not rows and not always:
        return []
    lines = [title]
    if not rows:
        return [*lines, f"  {NONE}"]
    clean = [[_printable(str(cell)) for cell in row] for row in rows]
    if headers is None:
        lines.extend(f"  {row[0]}: {row[1]}" for row in clean)
        return lines
    lines.extend("  " + line for line in render_table(headers, clean).splitlines())
    return lines


def _maintainer(m: Mapping[str, Any]) -> str:
    contact = m.get("email") or m.get("url")
    return f"{m.get('name', '')} <{contact}>" if contact else str(m.get("name", ""))


def _requirements(req: Mapping[str, Any]) -> str:
    needs = [f"{key} {req[key]}" for key in ("cpu", "memory", "disk", "gpu") if req.get(key)]
    if req.get("architectures"):
        needs.append("architectures " + ",".join(req["architectures"]))
    return ", ".join(needs)


def _limits(limits: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {limits[key]}" for key in ("cpu", "memory", "disk", "gpu") if limits.get(key))


def _dependency(d: Mapping[str, Any]) -> str:
    kind = f" ({d['type']})" if d.get("type") else ""
    return f"{d.get('app', '')} {d.get('version') or '*'}{kind}"


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


# --- installs --------------------------------------------------------------------------------------


def appinstall_body(
    *,
    name: str,
    namespace: str,
    app: Obj,
    version: str | None,
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """Pure: the AppInstall that installs `app`; values and version only when asked for."""
    spec: dict[str, Any] = {"source": _spec(app)["source"], "app": _spec(app)["app"]}
    if version:
        spec["version"] = version
    if values:
        spec["values"] = dict(values)
    return {
        "apiVersion": API_VERSION,
        "kind": "AppInstall",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _ready_cell(obj: Obj) -> str:
    cond = condition(obj, "Ready")
    return str(cond.get("status")) if cond else NONE


def _version_cell(obj: Obj) -> str:
    return _status(obj).get("installedVersion") or _spec(obj).get("version") or NONE


def installs_table(installs: Sequence[Obj], *, now: datetime, with_namespace: bool) -> str:
    """Pure: AppInstalls as ``kubectl get`` would list them, with the Ready message last (as -o wide)."""
    headers = ["name", "app", "version", "phase", "ready", "age", "message"]
    if with_namespace:
        headers.insert(0, "namespace")
    rows = []
    ordered = sorted(installs, key=lambda i: (_meta(i).get("namespace", ""), _meta(i).get("name", "")))
    for obj in ordered:
        row = [
            _meta(obj).get("name", ""),
            _spec(obj).get("app", ""),
            _version_cell(obj),
            _status(obj).get("phase") or NONE,
            _ready_cell(obj),
            human_age(parse_time(_meta(obj).get("creationTimestamp")), now),
            (condition(obj, "Ready") or {}).get("message") or "",
        ]
        if with_namespace:
            row.insert(0, _meta(obj).get("namespace", ""))
        rows.append(row)
    return render_table(headers, rows)


def history_table(install: Obj, *, now: datetime) -> str:
    """Pure: ``status.history`` (newest first, as the operator keeps it) as a table."""
    rows = []
    for entry in _status(install).get("history") or []:
        started = parse_time(entry.get("startedAt"))
        finished = parse_time(entry.get("finishedAt"))
        took = human_age(started, finished) if started and finished else NONE
        rows.append(
            [
                str(entry["revision"]) if entry.get("revision") is not None else NONE,
                entry.get("operation", ""),
                entry.get("fromVersion") or NONE,
                entry.get("toVersion") or NONE,
                entry.get("result", ""),
                human_age(started, now) if started else NONE,
                took,
                entry.get("message", ""),
            ]
        )
    return render_table(["revision", "operation", "from", "to", "result", "started", "took", "message"], rows)


# --- waiting -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitState:
    """Whether waiting for an AppInstall is over: `done` (as wished), `failed` (a person must act)."""

    done: bool
    failed: bool
    summary: str


def install_state(obj: Obj | None, *, want_phase: str) -> WaitState:
    """Pure: how far an AppInstall is from `want_phase` with Ready=True, for its current generation.

    Stalled=True for the current generation ends the wait as failed: retrying will not help until
    someone changes something. Anything the operator has not yet seen is still in progress.
    """
    if obj is None:
        return WaitState(False, True, "it was deleted")
    generation = _meta(obj).get("generation")
    status = _status(obj)
    phase = status.get("phase") or "Pending"
    ready = condition(obj, "Ready")
    if status.get("observedGeneration") != generation or ready is None:
        return WaitState(False, False, f"{phase}: waiting for the operator to act on the change")
    message = ready.get("message") or ""
    stalled = condition(obj, "Stalled")
    if (
        stalled
        and stalled.get("status") == "True"
        and stalled.get("observedGeneration", generation) == generation
    ):
        reason = stalled.get("reason") or ready.get("reason") or "Stalled"
        return WaitState(False, True, f"{phase} ({reason}): {stalled.get('message') or message}")
    if phase == want_phase and ready.get("status") == "True":
        return WaitState(True, False, f"{phase}: {message}" if message else phase)
    return WaitState(False, False, f"{phase} ({ready.get('reason', '')}): {message}")
