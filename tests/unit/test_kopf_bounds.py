"""kopf's per-event deep copy of each object is off while the operator has no change handlers."""

from __future__ import annotations

import sys
from typing import Any

import kopf

from kubemart.runtime import kopf_bounds


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_no_essence_is_built_for_an_operator_of_event_handlers() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.event("kubemart.io", "v1alpha1", "appinstalls", registry=registry)
    async def seen(**_: Any) -> None:
        pass

    settings = kopf.OperatorSettings()
    assert kopf_bounds.apply(settings, registry)
    body = kopf.Body({"metadata": {"name": "x"}, "spec": {"values": _deep(sys.getrecursionlimit() * 2)}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
    assert settings.persistence.diffbase_storage.fetch(body=body) is None


def test_change_handlers_keep_kopfs_essence() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.update("kubemart.io", "v1alpha1", "appinstalls", registry=registry)
    async def changed(**_: Any) -> None:
        pass

    settings = kopf.OperatorSettings()
    before = settings.persistence.diffbase_storage
    assert not kopf_bounds.apply(settings, registry)
    assert settings.persistence.diffbase_storage is before
