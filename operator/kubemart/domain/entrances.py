"""How to open an app: what a person opens, not every port of every Service (pure).

An entrance is, in this order of authority:

1. an Ingress host (https when the Ingress's `tls` lists it), one per path;
2. what the chart marks, when it marks anything:
   - the `entrances` of an Olares app's `OlaresManifest.yaml` (`host` is the Service, `port` its
     port; `invisible: true` ones are skipped), when the caller passes the parsed manifest;
   - a Service annotated `kubemart.io/entrance`: `"true"` (each of its ports), or a comma-separated
     list of port names or numbers (`"http,8443"`);
3. otherwise, ports that are web by name or number: named `http`, `https`, `web` or `ui` (alone or
   first, as in `http-web`), or unnamed and numbered 80, 443, 8000, 8080, 8443 or 8888.

Never listed: headless and ExternalName Services, Services outside the release's namespace (such
as the kube-system Services kube-prometheus-stack adds for scraping), Services and ports whose name
says metrics, webhook or admission, an operator's own Service, and anything annotated
`kubemart.io/entrance: "false"` (an Ingress too). A Service's URL is its cluster DNS name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kubemart.models.appinstall import Entrance

ANNOTATION = "kubemart.io/entrance"
MAX_ENTRANCES = 32
"""Entrances kept in status: a chart with hundreds of Ingress paths must not bloat the object."""
_WEB_NAMES = {"http", "https", "web", "ui"}
_WEB_PORTS = {80, 443, 8000, 8080, 8443, 8888}
_NOT_FOR_PEOPLE = {
    "metrics",
    "exporter",
    "webhook",
    "webhooks",
    "admission",
    "operator",
    "grpc",
    "probe",
    "health",
}
_TLS_PORTS = {443, 8443}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def entrances_from(
    objects: Iterable[Mapping[str, Any]], namespace: str, *, olares: Mapping[str, Any] | None = None
) -> list[Entrance]:
    """The entrances of a release's objects (`namespace`: the release's); `olares` is the parsed
    OlaresManifest.yaml of an Olares app's chart, if it has one."""
    objects = [o for o in objects if isinstance(o, Mapping)]
    services = [o for o in objects if o.get("kind") == "Service" and _reachable(o, namespace)]
    marked = _olares(olares, namespace) + [e for s in services for e in _marked(s, namespace)]
    chart_marks = bool(marked) or any(_mark(s) not in (None, "false") for s in services)
    out: list[Entrance] = list(marked)
    for obj in objects:
        if obj.get("kind") == "Ingress" and _mark(obj) != "false":
            out += _ingress(obj)
        elif obj.get("kind") == "Service" and not chart_marks and obj in services and _mark(obj) is None:
            out += _guessed(obj, namespace)
    unique: dict[str, Entrance] = {}
    for e in out:
        unique.setdefault(e.url, e)
    return list(unique.values())[:MAX_ENTRANCES]


def _mark(obj: Mapping[str, Any]) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    return str(value).strip().lower() if value is not None else None


def _reachable(svc: Mapping[str, Any], namespace: str) -> bool:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    return (
        (meta.get("namespace") or namespace) == namespace
        and spec.get("clusterIP") != "None"
        and spec.get("type") != "ExternalName"
    )


def _url(scheme: str, service: str, namespace: str, port: int) -> str:
    return f"{scheme}://{service}.{namespace}.svc:{port}"


def _scheme(port: Mapping[str, Any]) -> str:
    name = str(port.get("name") or "").lower()
    tls = (
        name.split("-")[0] == "https" or port.get("appProtocol") == "https" or port.get("port") in _TLS_PORTS
    )
    return "https" if tls else "http"


def _ports(svc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    ports = (svc.get("spec") or {}).get("ports") or []
    return [p for p in ports if isinstance(p, Mapping) and isinstance(p.get("port"), int)]


def _marked(svc: Mapping[str, Any], namespace: str) -> list[Entrance]:
    mark = _mark(svc)
    if mark in (None, "false"):
        return []
    name = str((svc.get("metadata") or {}).get("name", ""))
    wanted = None if mark == "true" else {w.strip() for w in (mark or "").split(",") if w.strip()}
    return [
        Entrance(
            name=f"{name}:{p.get('name') or p['port']}", url=_url(_scheme(p), name, namespace, p["port"])
        )
        for p in _ports(svc)
        if wanted is None or str(p.get("name") or "").lower() in wanted or str(p["port"]) in wanted
    ]


def _for_people(name: str) -> bool:
    return not set(name.lower().split("-")) & _NOT_FOR_PEOPLE


def _guessed(svc: Mapping[str, Any], namespace: str) -> list[Entrance]:
    meta = svc.get("metadata") or {}
    name = str(meta.get("name", ""))
    component = str((meta.get("labels") or {}).get("app.kubernetes.io/component", ""))
    if not _for_people(name) or not _for_people(component):
        return []
    out = []
    for p in _ports(svc):
        port_name = str(p.get("name") or "").lower()
        web = (
            port_name.split("-")[0] in _WEB_NAMES and _for_people(port_name)
            if port_name and not port_name.isdigit()
            else p["port"] in _WEB_PORTS
        )
        if web:
            out.append(
                Entrance(
                    name=f"{name}:{p.get('name') or p['port']}",
                    url=_url(_scheme(p), name, namespace, p["port"]),
                )
            )
    return out


def _ingress(obj: Mapping[str, Any]) -> list[Entrance]:
    name = str((obj.get("metadata") or {}).get("name", ""))
    spec = obj.get("spec") or {}
    tls_hosts = {h for t in spec.get("tls") or [] if isinstance(t, Mapping) for h in t.get("hosts") or []}
    out = []
    for rule in spec.get("rules") or []:
        host = rule.get("host") if isinstance(rule, Mapping) else None
        if not host or not isinstance(host, str):
            continue
        scheme = "https" if host in tls_hosts else "http"
        paths = [
            p.get("path") or "/"
            for p in (rule.get("http") or {}).get("paths") or []
            if isinstance(p, Mapping)
        ]
        for path in paths or ["/"]:
            out.append(Entrance(name=f"{name}:{host}", url=f"{scheme}://{host}{path}"))
    return out


def _olares(manifest: Mapping[str, Any] | None, namespace: str) -> list[Entrance]:
    """An Olares app's declared entrances. The manifest comes from the chart: only well-formed
    entries are taken (a DNS-label host, a port number), so it cannot point anywhere odd."""
    if not isinstance(manifest, Mapping):
        return []
    out = []
    for e in manifest.get("entrances") or []:
        if not isinstance(e, Mapping) or e.get("invisible") is True:
            continue
        host, port, name = e.get("host"), e.get("port"), e.get("name") or e.get("host")
        if not isinstance(host, str) or not _DNS_LABEL.match(host):
            continue
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            continue
        scheme = "https" if port in _TLS_PORTS else "http"
        out.append(Entrance(name=str(name)[:63], url=_url(scheme, host, namespace, port)))
    return out
