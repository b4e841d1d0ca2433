"""The Kubernetes API, through lightkube's async client: the one place API errors are translated.

lightkube is async (kopf runs on asyncio), typed, and speaks server-side apply, which the
catalog and drift correction rely on. Its errors become `KubeError` here and nowhere else.
"""

from __future__ import annotations

import base64
import contextvars
import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_global_resource,
    create_namespaced_resource,
)
from lightkube.types import PatchType

from kubemart.adapters.discovery import ResourceInfo, RESTMapper
from kubemart.models.resource import GROUP, VERSION

FIELD_MANAGER = "kubemart"

MarketSourceResource = create_global_resource(GROUP, VERSION, "MarketSource", "marketsources")
MarketAppResource = create_global_resource(GROUP, VERSION, "MarketApp", "marketapps")
AppInstallResource = create_namespaced_resource(GROUP, VERSION, "AppInstall", "appinstalls")
PaymentResource = create_namespaced_resource(GROUP, VERSION, "Payment", "payments")
NotificationSinkResource = create_namespaced_resource(GROUP, VERSION, "NotificationSink", "notificationsinks")

Body = dict[str, Any]


KIND_NOT_SERVED = "KindNotServed"
"""KubeError reason: the API server serves no resource for an (apiVersion, kind)."""


class KubeError(Exception):
    """An API call failed: `status` is the HTTP code (0 when there was no HTTP answer for it)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _translate(exc: Exception) -> KubeError:
    if isinstance(exc, ApiError):
        st = exc.status
        return KubeError(int(st.code or 0), str(st.reason or "Unknown"), str(st.message or exc))
    if isinstance(exc, httpx2.HTTPStatusError):
        # An answer without a Status body (a bare 404 for a resource the server does not serve).
        code = exc.response.status_code
        return KubeError(
            code, exc.response.reason_phrase or "Unknown", f"the API server answered HTTP {code}"
        )
    return KubeError(0, "Unreachable", f"the Kubernetes API could not be reached: {exc}")


class Principal(Protocol):
    """Someone the operator acts as (a tenant's ServiceAccount): the apiserver's user and groups."""

    @property
    def user(self) -> str: ...

    @property
    def groups(self) -> Sequence[str]: ...


# Who the requests of the current task act as; read by the HTTP client's request hook. A context
# variable, so that one connection pool serves every identity and nothing leaks between tasks.
_ACTING_AS: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "kubemart_acting_as", default=None
)


async def _impersonate(request: httpx2.Request) -> None:
    who = _ACTING_AS.get()
    if who is None:
        return
    # No Impersonate-Group: the API server adds a ServiceAccount's groups itself (as for helm's flags).
    extra = [("Impersonate-User", who.user)]
    request.headers = httpx2.Headers([*request.headers.multi_items(), *extra])


def _http_of(client: AsyncClient) -> httpx2.AsyncClient | None:
    """lightkube's own httpx2 client (its connections, auth and our request hook)."""
    http = getattr(getattr(client, "_client", None), "_client", None)
    return http if isinstance(http, httpx2.AsyncClient) else None


def _install_impersonation(client: AsyncClient) -> None:
    # lightkube has no impersonation setting; its httpx2 client takes a request hook instead.
    http = _http_of(client)
    if http is None:
        return  # not lightkube's usual layout: acting_as() will refuse rather than act as the operator
    hooks = http.event_hooks
    if _impersonate not in hooks["request"]:
        http.event_hooks = {"request": [*hooks["request"], _impersonate], "response": hooks["response"]}


class _ActingAs:
    """lightkube's client, with each single request made as `who`."""

    def __init__(self, api: Any, who: Principal) -> None:
        self._api = api
        self._who = who

    def __getattr__(self, name: str) -> Any:
        if name in ("list", "watch"):
            raise NotImplementedError("acting as another identity is for single requests")
        method = getattr(self._api, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            token = _ACTING_AS.set(self._who)
            try:
                return await method(*args, **kwargs)
            finally:
                _ACTING_AS.reset(token)

        return call


class Kube:
    """Typed operations the services need, each a single API call."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        # lightkube's overloads type each resource class; ours are generic, so go through Any.
        self._api: Any = client
        _install_impersonation(client)
        self.mapper = RESTMapper(self._discover)

    def acting_as(self, who: Principal | None) -> Kube:
        """This client, making its requests as `who` (None: as the operator). Same connections."""
        if who is None:
            return self
        http = _http_of(self.client)
        if http is None or _impersonate not in http.event_hooks["request"]:
            raise KubeError(0, "ImpersonationUnavailable", "this Kubernetes client cannot impersonate")
        view = copy.copy(self)
        view._api = _ActingAs(self.client, who)
        return view

    async def may(self, who: Principal, *, verb: str, resource: str, namespace: str, group: str = "") -> bool:
        """A SubjectAccessReview: may `who` do `verb` on `resource` in `namespace`?"""
        from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
        from lightkube.resources.authorization_v1 import SubjectAccessReview

        review = SubjectAccessReview(
            spec=SubjectAccessReviewSpec(
                user=who.user,
                groups=list(who.groups),
                resourceAttributes=ResourceAttributes(
                    verb=verb, resource=resource, group=group, namespace=namespace
                ),
            )
        )
        try:
            answer = await self._api.create(review)
        except (ApiError, httpx2.HTTPError) as exc:
            raise _translate(exc) from exc
        return bool(answer.status and answer.status.allowed)

    @classmethod
    def from_environment(cls) -> Kube:
        return cls(AsyncClient(field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(30.0)))

    async def close(self) -> None:
        await self.client.close()

    # --- generic -------------------------------------------------------------------------------

    async def get(self, res: Any, name: str, namespace: str | None = None) -> Body | None:
        try:
            obj = await self._api.get(res, name, namespace=namespace)
        except (ApiError, httpx2.HTTPError) as exc:
            err = _translate(exc)
            if err.not_found:
                return None
            raise err from exc
        return _to_dict(obj)

    async def list(
        self, res: Any, *, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Body]:
        try:
            return [
                _to_dict(o)
                async for o in self._api.list(
                    res, namespace=namespace, labels=dict(labels or {}), chunk_size=500
                )
            ]
        except (ApiError, httpx2.HTTPError) as exc:
            raise _translate(exc) from exc

    async def apply(self, res: Any, body: Body, *, namespace: str | None = None, force: bool = True) -> Body:
        """Server-side apply as field manager `kubemart`."""
        obj = res.from_dict(body) if isinstance(res, type) and hasattr(res, "from_dict") else body
        try:
            return _to_dict(await self._api.apply(obj, namespace=namespace, force=force))
        except (ApiError, httpx2.HTTPError) as exc:
            raise _translate(exc) from exc

    async def create(self, res: Any, body: Body, *, namespace: str | None = None) -> Body:
        obj = res.from_dict(body) if hasattr(res, "from_dict") else body
        try:
            return _to_dict(await self._api.create(obj, namespace=namespace))
        except (ApiError, httpx2.HTTPError) as exc:
            raise _translate(exc) from exc

    async def delete(self, res: Any, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self._api.delete(res, name, namespace=namespace)
        except (ApiError, httpx2.HTTPError) as exc:
            err = _translate(exc)
            if err.not_found:
                return False
            raise err from exc
        return True

    async def merge_patch(
        self, res: Any, name: str, patch: Body, namespace: str | None = None
    ) -> Body | None:
        """A JSON merge patch; None when the object is gone."""
        try:
            obj = await self._api.patch(res, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        except (ApiError, httpx2.HTTPError) as exc:
            err = _translate(exc)
            if err.not_found:
                return None
            raise err from exc
        return _to_dict(obj)

    async def json_patch(
        self, res: Any, name: str, ops: Sequence[Mapping[str, Any]], namespace: str | None = None
    ) -> Body | None:
        """A JSON patch (RFC 6902), so a `test` op can guard a change without a resourceVersion; None when gone."""
        try:
            obj = await self._api.patch(
                res, name, [dict(o) for o in ops], namespace=namespace, patch_type=PatchType.JSON
            )
        except (ApiError, httpx2.HTTPError) as exc:
            err = _translate(exc)
            if err.not_found:
                return None
            raise err from exc
        return _to_dict(obj)

    async def patch_status(
        self, res: Any, name: str, status: Body, namespace: str | None = None
    ) -> Body | None:
        """Merge-patch the status subresource; None when the object is gone."""
        return await self.merge_patch(res.Status, name, {"status": status}, namespace=namespace)

    # --- core objects --------------------------------------------------------------------------

    async def read_secret_data(self, name: str, namespace: str) -> dict[str, str] | None:
        """The Secret's data, decoded; None when it does not exist."""
        from lightkube.resources.core_v1 import Secret

        body = await self.get(Secret, name, namespace)
        if body is None:
            return None
        data = cast(dict[str, str], body.get("data") or {})
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        out.update(cast(dict[str, str], body.get("stringData") or {}))
        return out

    async def read_configmap_data(self, name: str, namespace: str) -> dict[str, str] | None:
        from lightkube.resources.core_v1 import ConfigMap

        body = await self.get(ConfigMap, name, namespace)
        if body is None:
            return None
        return cast(dict[str, str], body.get("data") or {})

    async def namespace_exists(self, name: str) -> bool:
        from lightkube.resources.core_v1 import Namespace

        return await self.get(Namespace, name) is not None

    async def server_version(self) -> Mapping[str, Any]:
        """The API server's /version document (gitVersion, major, minor); open to every user, like discovery."""
        return await self._discover("/version") or {}

    # --- any object, through discovery -------------------------------------------------------

    async def resource_for(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The resource serving a kind, from the API server's discovery; None when none does."""
        return await self.mapper.lookup(api_version, kind)

    async def is_namespaced(self, api_version: str, kind: str) -> bool:
        return (await self._served(api_version, kind)).namespaced

    async def _served(self, api_version: str, kind: str) -> ResourceInfo:
        info = await self.resource_for(api_version, kind)
        if info is None:
            raise KubeError(
                0,
                KIND_NOT_SERVED,
                f"{api_version} {kind} is not served by the API server (is the CustomResourceDefinition "
                "that defines it installed?)",
            )
        return info

    async def get_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> Body | None:
        """Any object by kind and name; None when it does not exist."""
        if not name:
            raise KubeError(422, "Invalid", f"a {kind} without a name cannot be read")
        info = await self._served(api_version, kind)
        ns = namespace if info.namespaced else None
        try:
            obj = await self._api.get(self.mapper.resource_class(info), name, namespace=ns)
        except (ApiError, httpx2.HTTPError) as exc:
            err = self._object_error(exc, info)
            if err.not_found:
                return None
            raise err from exc
        return _to_dict(obj)

    async def apply_object(
        self,
        body: Body,
        *,
        namespace: str | None,
        field_manager: str = FIELD_MANAGER,
        dry_run: bool = False,
        force: bool = True,
    ) -> Body:
        """Server-side apply of any object, taking ownership of the fields it sets (`force`). With
        `dry_run` nothing is stored: the answer is the object as it would be."""
        info = await self._served(str(body.get("apiVersion", "")), str(body.get("kind", "")))
        meta = body.get("metadata") or {}
        if not meta.get("name"):
            raise KubeError(422, "Invalid", f"a {info.kind} without a name cannot be applied")
        ns = (meta.get("namespace") or namespace) if info.namespaced else None
        try:
            obj = await self._api.patch(
                self.mapper.resource_class(info),
                meta.get("name"),
                body,
                namespace=ns,
                patch_type=PatchType.APPLY,
                field_manager=field_manager,
                force=force,
                dry_run=dry_run,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise self._object_error(exc, info) from exc
        return _to_dict(obj)

    async def scale(self, api_version: str, kind: str, name: str, namespace: str, replicas: int) -> None:
        """Set `spec.replicas` (a merge patch: the rights a chart's account has on its workloads)."""
        info = await self._served(api_version, kind)
        try:
            await self._api.patch(
                self.mapper.resource_class(info),
                name,
                {"spec": {"replicas": replicas}},
                namespace=namespace if info.namespaced else None,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            err = self._object_error(exc, info)
            if not err.not_found:
                raise err from exc

    def _object_error(self, exc: Exception, info: ResourceInfo) -> KubeError:
        err = _translate(exc)
        if err.status == 404 and not isinstance(exc, ApiError):
            # A bare 404 (no Status body) is for the resource, not the object: its CRD went away.
            self.mapper.forget(info.api_version)
            return KubeError(
                0, KIND_NOT_SERVED, f"{info.api_version} {info.kind} is no longer served by the API server"
            )
        return err

    async def _discover(self, path: str) -> Mapping[str, Any] | None:
        """A discovery document, fetched as the operator (discovery is open to every user anyway)."""
        http = _http_of(self.client)
        if http is None:
            raise KubeError(0, "DiscoveryUnavailable", "this Kubernetes client cannot read API discovery")
        token = _ACTING_AS.set(None)
        try:
            resp = await http.get(path)
        except httpx2.HTTPError as exc:
            raise _translate(exc) from exc
        finally:
            _ACTING_AS.reset(token)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise KubeError(
                resp.status_code,
                "DiscoveryFailed",
                f"API discovery ({path}) answered HTTP {resp.status_code}",
            )
        doc = resp.json()
        return cast(Mapping[str, Any], doc) if isinstance(doc, Mapping) else None


def _to_dict(obj: Any) -> Body:
    if isinstance(obj, GenericGlobalResource | GenericNamespacedResource) or not isinstance(obj, dict):
        to_dict: Any = obj.to_dict
        return cast(Body, to_dict())
    return cast(Body, obj)
