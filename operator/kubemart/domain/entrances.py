"""How to open an app: its Services' cluster DNS names and its Ingress hosts (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubemart.models.appinstall import Entrance


def entrances_from(objects: Iterable[dict[str, Any]], namespace: str) -> list[Entrance]:
    out: list[Entrance] = []
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        ns = str(meta.get("namespace") or namespace)
        spec = obj.get("spec") or {}
        if kind == "Service":
            for port in spec.get("ports") or []:
                number = port.get("port")
                if number is None:
                    continue
                scheme = "https" if number == 443 or str(port.get("name", "")).startswith("https") else "http"
                label = f"{name}:{port.get('name') or number}"
                out.append(Entrance(name=label, url=f"{scheme}://{name}.{ns}.svc:{number}"))
        elif kind == "Ingress":
            tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
            for rule in spec.get("rules") or []:
                host = rule.get("host")
                if not host:
                    continue
                scheme = "https" if host in tls_hosts else "http"
                paths = [p.get("path") or "/" for p in (rule.get("http") or {}).get("paths") or []] or ["/"]
                for path in paths:
                    out.append(Entrance(name=f"{name}:{host}", url=f"{scheme}://{host}{path}"))
    return out
