"""adapters.discovery: reading discovery documents, and the RESTMapper's cache policy (a clock and a
recorded document server stand in for time and the API server; tests/test_any_kind.py runs it
against the real one)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from kubemart.adapters.discovery import ResourceInfo, RESTMapper, discovery_path, parse_resource_list

# Trimmed from a kube-apiserver v1.36 answer to GET /apis/apps/v1.
APPS_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "apps/v1",
    "resources": [
        {
            "name": "deployments",
            "singularName": "deployment",
            "namespaced": True,
            "kind": "Deployment",
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": ["deploy"],
        },
        {
            "name": "deployments/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        },
        {
            "name": "deployments/status",
            "singularName": "",
            "namespaced": True,
            "kind": "Deployment",
            "verbs": ["get", "patch", "update"],
        },
        {
            "name": "statefulsets",
            "singularName": "statefulset",
            "namespaced": True,
            "kind": "StatefulSet",
            "verbs": ["get", "list"],
        },
    ],
}
RBAC_V1 = {
    "groupVersion": "rbac.authorization.k8s.io/v1",
    "resources": [{"name": "clusterroles", "namespaced": False, "kind": "ClusterRole", "verbs": ["get"]}],
}


def test_parse_resource_list() -> None:
    kinds = parse_resource_list(APPS_V1, "apps/v1")
    assert set(kinds) == {"Deployment", "StatefulSet"}, "subresources are not kinds of their own"
    deploy = kinds["Deployment"]
    assert (deploy.plural, deploy.namespaced, deploy.group, deploy.version) == (
        "deployments",
        True,
        "apps",
        "v1",
    )
    assert deploy.subresources == {"scale", "status"}
    assert deploy.may("patch")
    assert not kinds["StatefulSet"].may("patch")
    role = parse_resource_list(RBAC_V1, "rbac.authorization.k8s.io/v1")["ClusterRole"]
    assert not role.namespaced


def test_parse_resource_list_skips_what_it_cannot_use() -> None:
    doc = {"resources": [{"name": "", "kind": "X"}, {"name": "ys"}, "junk", {"name": "zs", "kind": "Z"}]}
    assert set(parse_resource_list(doc, "v1")) == {"Z"}
    assert parse_resource_list({}, "v1") == {}


@pytest.mark.parametrize(
    ("api_version", "path"),
    [("v1", "/api/v1"), ("apps/v1", "/apis/apps/v1"), ("example.org/v1beta1", "/apis/example.org/v1beta1")],
)
def test_discovery_path(api_version: str, path: str) -> None:
    assert discovery_path(api_version) == path


class Server:
    """Discovery documents by path, counting requests; a path not served answers None (404)."""

    def __init__(self) -> None:
        self.docs: dict[str, Mapping[str, Any]] = {"/apis/apps/v1": APPS_V1}
        self.requests: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def fetch(self, path: str) -> Mapping[str, Any] | None:
        self.requests.append(path)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.docs.get(path)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mapper(server: Server, clock: Clock) -> RESTMapper:
    return RESTMapper(server.fetch, negative_ttl=10, positive_ttl=600, clock=clock)


def test_a_known_kind_is_fetched_once() -> None:
    asyncio.run(_test_a_known_kind_is_fetched_once())


async def _test_a_known_kind_is_fetched_once() -> None:
    server, clock = Server(), Clock()
    m = mapper(server, clock)
    first = await m.lookup("apps/v1", "Deployment")
    assert isinstance(first, ResourceInfo)
    assert await m.lookup("apps/v1", "Deployment") is first
    assert await m.lookup("apps/v1", "StatefulSet") is not None
    assert server.requests == ["/apis/apps/v1"], "one request per group-version"


def test_an_unknown_kind_is_asked_for_at_most_once_per_negative_ttl() -> None:
    asyncio.run(_test_an_unknown_kind_is_asked_for_at_most_once_per_negative_ttl())


async def _test_an_unknown_kind_is_asked_for_at_most_once_per_negative_ttl() -> None:
    server, clock = Server(), Clock()
    m = mapper(server, clock)
    for _ in range(50):
        assert await m.lookup("example.org/v1", "Widget") is None
        assert await m.lookup("apps/v1", "Widget") is None
    assert server.requests == ["/apis/example.org/v1", "/apis/apps/v1"], "no request storm"
    # The chart's CRD arrives: seen once the negative entry is older than its TTL.
    server.docs["/apis/example.org/v1"] = {
        "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True}]
    }
    clock.now += 5
    assert await m.lookup("example.org/v1", "Widget") is None
    clock.now += 6
    widget = await m.lookup("example.org/v1", "Widget")
    assert widget is not None
    assert widget.plural == "widgets"
    assert len(server.requests) == 3


def test_positive_entries_are_refreshed_after_their_ttl_and_on_forget() -> None:
    asyncio.run(_test_positive_entries_are_refreshed_after_their_ttl_and_on_forget())


async def _test_positive_entries_are_refreshed_after_their_ttl_and_on_forget() -> None:
    server, clock = Server(), Clock()
    m = mapper(server, clock)
    await m.lookup("apps/v1", "Deployment")
    clock.now += 599
    await m.lookup("apps/v1", "Deployment")
    assert len(server.requests) == 1
    clock.now += 2
    await m.lookup("apps/v1", "Deployment")
    assert len(server.requests) == 2
    m.forget("apps/v1")
    await m.lookup("apps/v1", "Deployment")
    assert len(server.requests) == 3


def test_concurrent_lookups_share_one_request() -> None:
    asyncio.run(_test_concurrent_lookups_share_one_request())


async def _test_concurrent_lookups_share_one_request() -> None:
    server, clock = Server(), Clock()
    server.gate = asyncio.Event()
    m = mapper(server, clock)
    waiting = [
        asyncio.create_task(m.lookup("apps/v1", k)) for k in ("Deployment", "StatefulSet", "Nope") * 20
    ]
    await asyncio.sleep(0)
    server.gate.set()
    found = await asyncio.gather(*waiting)
    assert server.requests == ["/apis/apps/v1"]
    assert [f.kind if f else None for f in found[:3]] == ["Deployment", "StatefulSet", None]


def test_a_failed_fetch_is_raised_to_every_waiter_and_not_kept() -> None:
    asyncio.run(_test_a_failed_fetch_is_raised_to_every_waiter_and_not_kept())


async def _test_a_failed_fetch_is_raised_to_every_waiter_and_not_kept() -> None:
    server, clock = Server(), Clock()
    server.gate, server.fail = asyncio.Event(), ConnectionError("apiserver away")
    m = mapper(server, clock)
    waiting = [asyncio.create_task(m.lookup("apps/v1", "Deployment")) for _ in range(3)]
    await asyncio.sleep(0)
    server.gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    server.fail = None
    assert await m.lookup("apps/v1", "Deployment") is not None, "the next look-up asks again"


def test_resource_classes_are_generic_and_kept_out_of_lightkubes_registry() -> None:
    from lightkube.core.resource_registry import resource_registry
    from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

    m = RESTMapper(Server().fetch)
    widget = ResourceInfo("example.org/v1", "Widget", "widgets", namespaced=True)
    cls = m.resource_class(widget)
    assert issubclass(cls, GenericNamespacedResource)
    assert m.resource_class(widget) is cls
    cluster = m.resource_class(ResourceInfo("example.org/v1", "Widget", "widgets", namespaced=False))
    assert issubclass(cluster, GenericGlobalResource), "a CRD whose scope changed gets a class of its own"
    assert resource_registry.get("example.org/v1", "Widget") is None
