"""The Kubernetes API as the plugin speaks to it: lightkube's sync client, with the person's
kubeconfig, context and namespace, and the one place API and connection errors become a
`PluginError` that reads as one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import ALL_NS, Client, ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from kubemart.plugin.views import GROUP, VERSION

__all__ = ["AlreadyExists", "Forbidden", "Market", "NotFound", "PluginError", "load_config"]

Body = dict[str, Any]
FIELD_MANAGER = "kubectl-market"

# lightkube hands back the same classes as adapters.kube defines; made here so that a command
# does not import the operator's adapters and models (building every pydantic model costs 0.2 s).
MarketSourceResource = create_global_resource(GROUP, VERSION, "MarketSource", "marketsources")
MarketAppResource = create_global_resource(GROUP, VERSION, "MarketApp", "marketapps")
AppInstallResource = create_namespaced_resource(GROUP, VERSION, "AppInstall", "appinstalls")
NotificationSinkResource = create_namespaced_resource(GROUP, VERSION, "NotificationSink", "notificationsinks")


class PluginError(Exception):
    """An error to print as one line, with exit code 1."""


class NotFound(PluginError):
    """The object asked for does not exist."""


class AlreadyExists(PluginError):
    """An object of that name exists already."""


class Forbidden(PluginError):
    """The credentials may not do that (HTTP 401 or 403)."""


def load_config(kubeconfig: str | None, context: str | None) -> SingleConfig:
    """The kubeconfig context to use, found the way kubectl finds it: --kubeconfig, else the
    files of $KUBECONFIG (merged, the first to define a name winning), else ~/.kube/config, else
    the pod's service account."""
    if kubeconfig:
        paths = [Path(kubeconfig).expanduser()]
    elif os.environ.get("KUBECONFIG"):
        paths = [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = [Path.home() / ".kube" / "config"]
    existing = [p for p in paths if p.is_file()]
    try:
        if existing:
            config = KubeConfig.from_dict(_merged(existing), fname=existing[0])
        elif kubeconfig:
            raise PluginError(f"the kubeconfig file {kubeconfig} does not exist")
        else:
            config = KubeConfig.from_service_account()
    except ConfigError as exc:
        where = ", ".join(str(p) for p in paths)
        raise PluginError(
            f"no usable kubeconfig ({where}): {exc}; set KUBECONFIG or pass --kubeconfig"
        ) from None
    try:
        single = config.get(context_name=context)
    except ConfigError as exc:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise PluginError(f"{exc} in the kubeconfig (contexts: {known}); fix --context") from None
    assert single is not None  # get() raises rather than return None when no default is given
    return single


def _merged(paths: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": [], "current-context": None}
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PluginError(f"the kubeconfig {path} cannot be read: {exc}") from None
        if not isinstance(doc, dict):
            raise PluginError(f"the kubeconfig {path} is not a kubeconfig (a YAML mapping)")
        if not merged["current-context"]:
            merged["current-context"] = doc.get("current-context")
        for section in ("clusters", "contexts", "users"):
            seen = {entry.get("name") for entry in merged[section]}
            merged[section].extend(e for e in doc.get(section) or [] if e.get("name") not in seen)
    return merged


def _describe(exc: Exception, server: str) -> PluginError:
    if isinstance(exc, ApiError):
        status = exc.status
        message = str(status.message or exc)
        if status.code == 404:
            return NotFound(message)
        if status.code == 409 and status.reason == "AlreadyExists":
            return AlreadyExists(message)
        if status.code in (401, 403):
            return Forbidden(f"{message} (check your credentials and RBAC for kubemart.io)")
        return PluginError(message)
    if isinstance(exc, httpx2.HTTPStatusError):
        if exc.response.status_code == 404:
            # The API server answers a plain 404 for an API group it does not serve.
            return PluginError(
                f"the cluster at {server} does not serve {GROUP}/{VERSION}: Kubemart is not installed "
                "there (apply its CRDs and run the operator), or this is the wrong --context"
            )
        return PluginError(f"the Kubernetes API at {server} answered {exc.response.status_code}")
    return PluginError(f"the Kubernetes API at {server} could not be reached: {exc}")


class Market:
    """The calls the commands make, each one API request; errors raise `PluginError`."""

    def __init__(self, config: SingleConfig, *, namespace: str | None) -> None:
        self.namespace = namespace or config.namespace
        self.server = config.cluster.server
        self._client: Any = Client(
            config=config,
            namespace=self.namespace,
            field_manager=FIELD_MANAGER,
            timeout=httpx2.Timeout(30.0),
        )

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (ApiError, httpx2.HTTPError) as exc:
            raise _describe(exc, self.server) from None

    # --- the catalog -------------------------------------------------------------------------------

    def apps(self, *, app: str | None = None, source: str | None = None) -> list[Body]:
        """MarketApps, narrowed by the labels the operator puts on them."""
        labels = {k: v for k, v in (("kubemart.io/app", app), ("kubemart.io/source", source)) if v}
        with self._errors():
            return [_to_dict(o) for o in self._client.list(MarketAppResource, labels=labels)]

    def source_priorities(self) -> dict[str, int] | None:
        """Each MarketSource's priority; None when sources cannot be read (a person may only see apps)."""
        try:
            with self._errors():
                sources = [_to_dict(o) for o in self._client.list(MarketSourceResource)]
        except PluginError:
            return None
        return {s["metadata"]["name"]: int((s.get("spec") or {}).get("priority") or 0) for s in sources}

    # --- installs ----------------------------------------------------------------------------------

    def install(self, name: str, namespace: str | None = None) -> Body:
        ns = namespace or self.namespace
        try:
            with self._errors():
                return _to_dict(self._client.get(AppInstallResource, name, namespace=ns))
        except NotFound:
            raise NotFound(
                f"app install {name!r} not found in namespace {ns}; "
                "'kubectl market status -A' lists the installed apps"
            ) from None

    def find_install(self, name: str, namespace: str | None = None) -> Body | None:
        try:
            return self.install(name, namespace)
        except NotFound:
            return None

    def installs(self, *, all_namespaces: bool = False) -> list[Body]:
        ns = ALL_NS if all_namespaces else self.namespace
        with self._errors():
            return [_to_dict(o) for o in self._client.list(AppInstallResource, namespace=ns)]

    def sinks(self, *, all_namespaces: bool = False) -> list[Body]:
        ns = ALL_NS if all_namespaces else self.namespace
        with self._errors():
            return [_to_dict(o) for o in self._client.list(NotificationSinkResource, namespace=ns)]

    def create_install(self, body: Mapping[str, Any]) -> Body:
        obj = AppInstallResource.from_dict(dict(body))
        with self._errors():
            return _to_dict(self._client.create(obj, namespace=body["metadata"]["namespace"]))

    def patch_install(self, name: str, patch: Mapping[str, Any]) -> Body:
        """A JSON merge patch of an AppInstall of the current namespace."""
        try:
            with self._errors():
                obj = self._client.patch(
                    AppInstallResource,
                    name,
                    dict(patch),
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                )
        except NotFound:
            self.install(name)  # says which namespace was looked in
            raise
        return _to_dict(obj)

    def delete_install(self, name: str) -> None:
        try:
            with self._errors():
                self._client.delete(AppInstallResource, name, namespace=self.namespace)
        except NotFound:
            self.install(name)
            raise

    # --- uploaded charts (Secrets, written with the person's own rights) ----------------------------

    def secret(self, name: str) -> Body | None:
        try:
            with self._errors():
                return _to_dict(self._client.get(Secret, name, namespace=self.namespace))
        except NotFound:
            return None

    def create_secret(self, body: Mapping[str, Any]) -> Body:
        with self._errors():
            return _to_dict(self._client.create(Secret.from_dict(dict(body)), namespace=self.namespace))

    def replace_secret(self, body: Mapping[str, Any]) -> Body:
        with self._errors():
            return _to_dict(self._client.replace(Secret.from_dict(dict(body)), namespace=self.namespace))


def _to_dict(obj: Any) -> Body:
    to_dict = getattr(obj, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(obj)
