"""What a release manifest's object asks for, as an applied configuration (pure).

Helm renders YAML that the API server would store differently: `annotations: null`, Secrets with
`stringData`, ports without a protocol. Applied as they are, such objects show differences that
are not changes (and `stringData` never shows in a read at all). This normalisation follows Flux's
(`fluxcd/pkg/ssa/normalize` and helm-controller's `action/diff.go`), so that a server-side apply
dry-run of the result equals the live object whenever nobody changed it:

- nulls are dropped: helm's own client drops them too, and the API server stores nothing for them;
- Helm's ownership metadata (`app.kubernetes.io/managed-by: Helm`, `meta.helm.sh/release-*`) is set,
  as helm sets it when it creates the object;
- a Secret's `stringData` becomes base64 `data` (kubernetes#108008);
- container and Service ports get the default protocol TCP (structured-merge-diff#130): without it
  an applied list entry does not match its stored twin;
- a CRD's conversion webhook `caBundle` is left to whoever injects it (cert-manager's cainjector);
- the namespace is set for namespaced kinds (the release's, when the manifest names none) and
  dropped for cluster-scoped ones; server-managed metadata and `status` are dropped.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
_SERVER_METADATA = (
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "resourceVersion",
    "uid",
    "managedFields",
    "selfLink",
)
_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def without_nulls(value: Any) -> Any:
    """A deep copy of `value` with every null mapping entry dropped (list items are kept)."""
    if isinstance(value, Mapping):
        return {str(k): without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def desired_object(
    obj: Mapping[str, Any], *, release: str, release_namespace: str, namespaced: bool
) -> dict[str, Any]:
    """The manifest object `obj` as the configuration to apply and compare (see the module doc)."""
    out: dict[str, Any] = without_nulls(obj)
    out.pop("status", None)
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    if namespaced:
        meta["namespace"] = meta.get("namespace") or release_namespace
    else:
        meta.pop("namespace", None)
    labels = _mapping(meta.get("labels"))
    annotations = _mapping(meta.get("annotations"))
    meta["labels"] = {**labels, MANAGED_BY: "Helm"}
    meta["annotations"] = {**annotations, RELEASE_NAME: release, RELEASE_NAMESPACE: release_namespace}
    out["metadata"] = meta
    kind = out.get("kind")
    api_version = str(out.get("apiVersion", ""))
    if kind == "Secret" and api_version == "v1":
        _string_data_to_data(out)
    elif kind == "Service" and api_version == "v1":
        _default_protocol((out.get("spec") or {}).get("ports"))
    elif kind == "CustomResourceDefinition" and api_version.startswith("apiextensions.k8s.io/"):
        client = (((out.get("spec") or {}).get("conversion") or {}).get("webhook") or {}).get("clientConfig")
        if isinstance(client, dict):
            client.pop("caBundle", None)
    if isinstance(kind, str) and kind in _POD_TEMPLATE_PATHS:
        pod = _dig(out, _POD_TEMPLATE_PATHS[kind])
        if isinstance(pod, dict):
            for container in pod.get("containers") or []:
                if isinstance(container, dict):
                    _default_protocol(container.get("ports"))
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _string_data_to_data(secret: dict[str, Any]) -> None:
    string_data = secret.pop("stringData", None)
    if not isinstance(string_data, Mapping) or not string_data:
        return
    data = dict(secret.get("data") or {})
    for key, value in string_data.items():
        data[str(key)] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = data


def _default_protocol(ports: Any) -> None:
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def for_apply(desired: Mapping[str, Any], *, replicas: int | None = None) -> dict[str, Any]:
    """The body to apply: `desired`, with `spec.replicas` held at `replicas` when given (a stopped
    app's workloads) and only when the chart sets replicas itself, so that the operator never
    takes ownership of a count the chart leaves to others (an HPA)."""
    body = copy.deepcopy(dict(desired))
    spec = body.get("spec")
    if replicas is not None and isinstance(spec, dict) and "replicas" in spec:
        spec["replicas"] = replicas
    return body


def well_formed(obj: Mapping[str, Any]) -> bool:
    """An object that names its kind and itself (and, if any, its namespace) with plain strings."""
    meta = obj.get("metadata")
    return (
        isinstance(obj.get("apiVersion"), str)
        and isinstance(obj.get("kind"), str)
        and isinstance(meta, Mapping)
        and isinstance(meta.get("name"), str)
        and bool(meta["name"])
        and isinstance(meta.get("namespace", ""), str | None)
    )
