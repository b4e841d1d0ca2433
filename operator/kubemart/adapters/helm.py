"""Helm: the helm CLI through pyhelm3, and Helm's release records read from the API.

Every helm subprocess starts here, holding a slot of a gate shared fairly between namespaces
(runtime.fair_gate). Cancelling the calling
task terminates the subprocess (pyhelm3 sends SIGTERM and waits), which is how a newer spec
or a deletion interrupts an operation in flight. Helm's failures become `HelmError` with a
stable reason here and nowhere else.

Release state is read from Helm's own storage (Secrets labelled owner=helm), so checking that a
release is deployed costs one API list and no subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyhelm3
from lightkube.resources.core_v1 import Secret

from kubemart.adapters.helm_errors import HelmError, classify
from kubemart.adapters.helm_storage import (
    ReleaseHistory,
    ReleaseRecord,
    decode_release,
    int_label,
    manifest_objects,
    manifest_of_record,
    unix_label,
)
from kubemart.adapters.kube import Kube, Principal
from kubemart.runtime import metrics
from kubemart.runtime.fair_gate import FairGate, OnQueued

log = logging.getLogger("kubemart.helm")


__all__ = [
    "Helm",
    "HelmError",
    "ReleaseHistory",
    "ReleaseRecord",
    "Slot",
    "classify",
    "decode_release",
    "impersonation_flags",
    "manifest_objects",
]


class _ExecCommand(pyhelm3.Command):
    """pyhelm3's commands, run without a shell.

    pyhelm3 starts helm through `sh -c`; cancelling then signals the shell, and helm runs on as an
    orphan. Here helm is the child itself, so SIGTERM reaches it and it marks the release failed
    (helm handles SIGTERM for install and upgrade) before it exits.
    """

    def __init__(
        self,
        *,
        executable: str,
        history_max_revisions: int,
        term_grace: float = 30.0,
        acting_as: Principal | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(executable=executable, history_max_revisions=history_max_revisions)
        self._exe = executable
        self._term_grace = term_grace
        self._acting_as = acting_as
        self._extra = extra_args

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:  # noqa: A002 - pyhelm3's name
        args = [
            self._exe,
            *(str(part) for part in command),
            *self._extra,
            *impersonation_flags(self._acting_as),
        ]
        # Values go on stdin, so the command line holds no secret.
        shown = shlex.join(args)
        log.info("running command: %s", shown)
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await proc.communicate(input)
        except BaseException:
            # A second cancel must not cut this short: helm gets its SIGTERM (then SIGKILL) and is
            # reaped before the helm slot is given back.
            stopping = asyncio.ensure_future(self._stop(proc))
            while not stopping.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(stopping)
            log.info("command canceled: %s", shown)
            raise
        if proc.returncode != 0:
            log.warning("command failed: %s", shown)
            raise pyhelm3.errors.Error(proc.returncode or 1, stdout, stderr)
        log.info("command succeeded: %s", shown)
        return stdout

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self._term_grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def impersonation_flags(who: Principal | None) -> list[str]:
    """Pure: helm's flags to act as `who`; names only, never a credential."""
    if who is None:
        return []
    # No --kube-as-group: for a ServiceAccount user the API server adds its groups itself, and naming
    # them would need the right to impersonate groups, which cannot be limited to future namespaces.
    return ["--kube-as-user", who.user]


@dataclass(frozen=True)
class Slot:
    """Whose helm slot an operation takes, and whom to tell while it waits or when it starts."""

    tenant: str = ""
    """The namespace whose share of the helm slots the operation counts against."""
    on_queued: OnQueued | None = None
    on_started: Callable[[], Awaitable[None]] | None = None


class Helm:
    def __init__(
        self, kube: Kube, *, executable: str, max_concurrent: int, per_tenant: int | None = None
    ) -> None:
        self.kube = kube
        self._executable = executable
        self._command = _ExecCommand(executable=executable, history_max_revisions=10)
        self._gate = FairGate(max_concurrent, per_tenant or max_concurrent)
        self.max_concurrent = max_concurrent
        self._manifests: dict[tuple[str, str, int], list[dict[str, Any]]] = {}

    async def history(self, release: str, namespace: str, *, with_manifest: bool = False) -> ReleaseHistory:
        """Read from Helm's release Secrets: no subprocess."""
        secrets = await self.kube.list(Secret, namespace=namespace, labels={"owner": "helm", "name": release})
        records = []
        for s in secrets:
            labels = s["metadata"].get("labels") or {}
            manifest, chart_version = "", None
            if with_manifest:
                doc = decode_release((s.get("data") or {}).get("release", ""))
                manifest = str(doc.get("manifest", ""))
                chart_version = ((doc.get("chart") or {}).get("metadata") or {}).get("version")
            records.append(
                ReleaseRecord(
                    name=release,
                    namespace=namespace,
                    revision=int_label(labels.get("version")),
                    status=labels.get("status", "unknown"),
                    chart_version=chart_version,
                    manifest=manifest,
                    modified_at=unix_label(labels.get("modifiedAt") or labels.get("createdAt")),
                    labels=dict(labels),
                    uid=s["metadata"].get("uid"),
                )
            )
        records.sort(key=lambda r: r.revision, reverse=True)
        return ReleaseHistory(tuple(records))

    async def manifest(self, release: str, namespace: str, revision: int) -> list[dict[str, Any]]:
        """The objects a revision rendered, read from Helm's storage and kept: revisions never change.

        The storage Secret lives in the app's namespace, where a tenant may write: it is read with
        bounds (decompressed size, YAML aliases and depth), and parsed off the event loop.
        """
        key = (namespace, release, revision)
        cached = self._manifests.get(key)
        if cached is None:
            body = await self.kube.get(Secret, f"sh.helm.release.v1.{release}.v{revision}", namespace)
            if body is None:
                return []
            data = (body.get("data") or {}).get("release", "")
            cached = await asyncio.to_thread(manifest_of_record, data)
            if len(self._manifests) > 2048:
                self._manifests.clear()
            self._manifests[key] = cached
        return cached

    def slots_in_use(self) -> int:
        """Helm subprocesses running now, out of `max_concurrent` (for the runtime view)."""
        return self._gate.in_use

    def slots_waiting(self) -> int:
        return self._gate.waiting()

    def _as(self, who: Principal | None, extra: tuple[str, ...] = ()) -> _ExecCommand:
        """The commands, run with `who`'s permissions (None: the operator's)."""
        if who is None and not extra:
            return self._command
        return _ExecCommand(
            executable=self._executable, history_max_revisions=10, acting_as=who, extra_args=extra
        )

    async def _run(self, operation: str, coro: Any, slot: Slot | None) -> Any:
        slot = slot or Slot()
        try:
            async with self._gate.slot(slot.tenant, on_queued=slot.on_queued):
                if slot.on_started is not None:
                    await slot.on_started()
                metrics.HELM_SUBPROCESSES.labels(operation).inc()
                try:
                    return await coro
                except pyhelm3.errors.Error as exc:
                    raise classify(exc.stderr.decode(errors="replace"), operation=operation) from None
                except FileNotFoundError as exc:
                    raise HelmError(
                        "HelmNotFound", f"The helm binary was not found: {exc}.", retryable=False
                    ) from None
        finally:
            coro.close()  # never awaited when cancelled while queued: no "never awaited" warning

    async def upgrade_install(
        self,
        *,
        release: str,
        namespace: str,
        chart: Path,
        values: Mapping[str, Any],
        timeout_seconds: float,
        install: bool,
        description: str,
        acting_as: Principal | None = None,
        labels: Mapping[str, str] | None = None,
        slot: Slot | None = None,
    ) -> ReleaseRecord:
        """`helm upgrade --install --wait`; values go on stdin, never on the command line.

        `labels` go on the release's storage (helm's --labels): how the operator marks a release as its own.
        """
        extra = ("--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items()))) if labels else ()
        result = await self._run(
            "install" if install else "upgrade",
            self._as(acting_as, extra).install_or_upgrade(
                release,
                chart,
                dict(values),
                namespace=namespace,
                create_namespace=False,
                wait=True,
                timeout=f"{int(timeout_seconds)}s",
                description=description,
            ),
            slot,
        )
        return ReleaseRecord(
            name=release,
            namespace=namespace,
            revision=int(result.get("version", 0)),
            status=str((result.get("info") or {}).get("status", "deployed")),
            chart_version=((result.get("chart") or {}).get("metadata") or {}).get("version"),
            manifest=str(result.get("manifest", "")),
        )

    async def rollback(
        self,
        *,
        release: str,
        namespace: str,
        revision: int | None,
        timeout_seconds: float,
        acting_as: Principal | None = None,
        slot: Slot | None = None,
    ) -> None:
        await self._run(
            "rollback",
            self._as(acting_as).rollback(
                release, revision, namespace=namespace, wait=True, timeout=f"{int(timeout_seconds)}s"
            ),
            slot,
        )

    async def uninstall(
        self,
        *,
        release: str,
        namespace: str,
        timeout_seconds: float,
        acting_as: Principal | None = None,
        slot: Slot | None = None,
    ) -> bool:
        """False when there was no release to uninstall."""
        try:
            await self._run(
                "uninstall",
                self._as(acting_as).uninstall(
                    release, namespace=namespace, wait=True, timeout=f"{int(timeout_seconds)}s"
                ),
                slot,
            )
        except HelmError as err:
            if "not found" in err.message.lower():
                return False
            raise
        return True
