"""NotificationSink reconcile: check the URL and the Secret, then hand the sink to the Notifier.

What cannot work is said in the sink's Ready condition with what to fix: a URL that is not allowed
(InvalidURL, AddressNotAllowed: Stalled, retrying cannot help until the spec changes), a Secret that
is missing or holds neither key (SecretNotFound, SecretInvalid: retried with backoff, and at once when
a Secret labelled kubemart.io/watch=true changes). Delivery itself never runs here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from kubemart.adapters.kube import Body, Kube, KubeError, NotificationSinkResource
from kubemart.adapters.receiver import ReceiverError, Receivers
from kubemart.domain.clip import clip
from kubemart.domain.conditions import Summary
from kubemart.domain.notify import Filters, url_problem
from kubemart.domain.triggers import requested_at
from kubemart.models.notificationsink import (
    NotificationSink,
    NotificationSinkSpec,
    NotificationSinkStatus,
    Severity,
)
from kubemart.runtime.controller import Key, Result, jittered
from kubemart.runtime.settings import Settings
from kubemart.services.events import EventRecorder
from kubemart.services.notify import Notifier, Target
from kubemart.services.problems import Problem
from kubemart.services.status import write_status


def filters_of(namespace: str, spec: NotificationSinkSpec, *, admin_namespace: str) -> Filters:
    """A tenant's sink sees its own namespace only, so its spec.namespaces is ignored."""
    admin = namespace == admin_namespace
    return Filters(
        namespace=namespace,
        admin=admin,
        kinds=frozenset(k.value for k in spec.kinds),
        namespaces=frozenset(spec.namespaces) if admin else frozenset(),
        reasons=frozenset(spec.reasons),
        warnings_only=spec.severity is Severity.WARNING,
    )


class Sinks:
    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        notifier: Notifier,
        receivers: Receivers,
        events: EventRecorder,
        *,
        remember: Callable[[Body], Any] | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.notifier = notifier
        self.receivers = receivers
        self.events = events
        self.remember = remember

    async def reconcile(self, key: Key, body: Body) -> Result:
        if body["metadata"].get("deletionTimestamp"):
            self.notifier.forget(key)
            return Result()
        status = NotificationSinkStatus.model_validate(body.get("status") or {})
        status.last_handled_reconcile_at = requested_at(body) or status.last_handled_reconcile_at
        try:
            sink = NotificationSink.model_validate(body)
        except ValidationError as exc:
            self.notifier.forget(key)
            message = f"The spec cannot be read: {clip(str(exc), 300)}; fix it."
            return await self._problem(body, status, Problem("InvalidSpec", message, stalled=True))
        spec = sink.spec
        if spec.suspend:
            self.notifier.forget(key)
            await self._write(
                body, status, Summary(None, "Suspended", "Suspended: nothing is queued or sent.")
            )
            return Result()
        filters = filters_of(key[0], spec, admin_namespace=self.settings.notify_admin_namespace)
        try:
            target = await self._target(key[0], spec)
        except Problem as problem:
            self.notifier.configure(key, filters, None, body.get("status") or {})
            return await self._problem(body, status, problem)
        self.notifier.configure(key, filters, target, body.get("status") or {})
        scope = "every namespace" if filters.admin else f"namespace {key[0]}"
        message = f"Events of {scope} matching the filters are posted to {spec.url}."
        if spec.namespaces and not filters.admin:
            message += (
                f" spec.namespaces is ignored: only sinks in {self.settings.notify_admin_namespace} "
                "see other namespaces."
            )
        await self._write(body, status, Summary(True, "Ready", message))
        # The Secret may change unwatched (unlabelled): read it again now and then.
        return Result(requeue_after=jittered(self.settings.resync_interval))

    async def _target(self, namespace: str, spec: NotificationSinkSpec) -> Target:
        problem = url_problem(spec.url, allow_http=self.settings.notify_allow_http)
        if problem is not None:
            raise Problem("InvalidURL", f"{problem}; fix spec.url.", stalled=True)
        try:
            await self.receivers.address(spec.url)
        except ReceiverError as err:
            if err.retryable:
                raise Problem(err.reason, f"{err.message}; retrying with backoff.") from None
            raise Problem(
                err.reason, f"{err.message}; point spec.url at a public receiver.", stalled=True
            ) from None
        if spec.secret_ref is None:
            return Target(spec.url)
        name = spec.secret_ref.name
        try:
            data = await self.kube.read_secret_data(name, namespace)
        except KubeError as err:
            raise Problem(
                "ApiUnavailable", f"Reading Secret {name} failed: {clip(err.message, 300)}"
            ) from err
        if data is None:
            raise Problem(
                "SecretNotFound",
                f"Secret {name} (spec.secretRef) does not exist in namespace {namespace}; create it with "
                "key hmacKey or token. Nothing is sent until then.",
            )
        hmac_key, token = data.get("hmacKey"), data.get("token")
        if not hmac_key and not token:
            raise Problem(
                "SecretInvalid",
                f"Secret {name} has neither key hmacKey nor key token; add one. Nothing is sent until then.",
            )
        return Target(spec.url, hmac_key=hmac_key.encode() if hmac_key else None, token=token or None)

    async def _problem(self, body: Body, status: NotificationSinkStatus, problem: Problem) -> Result:
        summary = Summary(False, problem.reason, problem.message, stalled=problem.stalled)
        if await self._write(body, status, summary):
            self.events.warning(body, problem.reason, problem.message)
        return Result() if problem.stalled else Result(backoff=True)

    async def _write(self, body: Body, status: NotificationSinkStatus, summary: Summary) -> bool:
        return await write_status(
            self.kube, NotificationSinkResource, body, status, summary, remember=self.remember
        )
