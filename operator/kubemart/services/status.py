"""Writing an object's status: the kstatus conditions from a summary, and only when something changed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubemart.adapters.kube import Body, Kube, KubeError
from kubemart.domain.conditions import Summary, conditions_for, same_conditions
from kubemart.models.resource import ReconciledStatus
from kubemart.runtime import logs

log = logging.getLogger("kubemart.status")


def merge_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Pure: the JSON merge patch (RFC 7386) that turns `before` into `after`.

    A key gone from a nested object must be sent as null: merging `{}` into an object changes nothing.
    """
    out: dict[str, Any] = dict.fromkeys(k for k in before if k not in after)
    for key, value in after.items():
        old = before.get(key)
        out[key] = merge_patch(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


async def write_status(
    kube: Kube,
    res: Any,
    body: Body,
    status: ReconciledStatus,
    summary: Summary,
    *,
    remember: Callable[[Body], Any] | None = None,
) -> bool:
    """Patch `status` (with conditions saying `summary`) unless only timestamps would change.

    Returns True when the conditions changed, which is when an Event is worth posting. The written
    status goes back into `body`, so that the pass's next write compares with it; the object the
    server returned goes to `remember` (the kind's store), so that no later pass works from an older one.
    """
    before = type(status).model_validate(body.get("status") or {})
    meta = body["metadata"]
    generation = meta.get("generation")
    status.observed_generation = generation
    status.conditions = conditions_for(
        summary, generation=generation, previous=before.conditions, now=datetime.now(UTC)
    )
    changed = not same_conditions(before.conditions, status.conditions)
    if not changed and status.wire() == before.wire():
        return False
    # The whole status, lists replaced; fields set back to None (at any depth) are cleared.
    patch = merge_patch(before.wire(), status.wire())
    try:
        updated = await kube.patch_status(res, meta["name"], patch, namespace=meta.get("namespace"))
    except KubeError as err:
        # The next reconcile writes it again; the object itself is not harmed.
        log.warning(
            "status of %s/%s not written: %s",
            meta.get("namespace") or "",
            meta["name"],
            err.message,
            extra=logs.ref_of(body),
        )
        return False
    if updated is not None:
        # Only the status: the rest of this pass still judges the spec and generation it read. The
        # server's answer may already carry a newer spec (a person's edit whose watch event is still
        # on its way); taking its metadata would claim that generation observed by a pass that never
        # saw it. The whole answer, consistent as the server sent it, goes to the store instead.
        body["status"] = updated.get("status") or {}
        if remember is not None:
            remember(updated)
    return changed
