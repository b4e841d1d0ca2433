"""Small helpers over the kubernetes client for scenario tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "kubemart.io", "v1alpha1"


class Objects:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create(self, plural: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
        if namespace:
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)  # type: ignore[no-any-return]
        return self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body)  # type: ignore[no-any-return]

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            if namespace:
                return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)  # type: ignore[no-any-return]
            return self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(
        self, plural: str, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        if namespace:
            return self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch)  # type: ignore[no-any-return]
        return self.custom.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch)  # type: ignore[no-any-return]

    def delete(self, plural: str, name: str, namespace: str | None = None) -> None:
        try:
            if namespace:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            else:
                self.custom.delete_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list(
        self, plural: str, *, labels: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        if namespace:
            out = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, label_selector=labels or ""
            )
        else:
            out = self.custom.list_cluster_custom_object(GROUP, VERSION, plural, label_selector=labels or "")
        return list(out["items"])

    def events_for(self, name: str, namespace: str = "default") -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about an object."""
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return [(e.type, e.reason, e.message) for e in events]


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any] | None:
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def ready(obj: dict[str, Any] | None) -> bool:
    c = condition(obj)
    return bool(c and c["status"] == "True" and c.get("observedGeneration") == obj["metadata"]["generation"])  # type: ignore[index]
