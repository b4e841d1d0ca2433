"""Helm: the helm CLI through pyhelm3, and Helm's release records read from the API.

Every helm subprocess starts here, bounded by one global semaphore. Cancelling the calling
task terminates the subprocess (pyhelm3 sends SIGTERM and waits), which is how a newer spec
or a deletion interrupts an operation in flight. Helm's failures become `HelmError` with a
stable reason here and nowhere else.

Release state is read from Helm's own storage (Secrets labelled owner=helm), so checking that a
release is deployed costs one API list and no subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyhelm3
from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Kube, Principal
from kubemart.domain import safe_yaml
from kubemart.runtime import metrics

log = logging.getLogger("kubemart.helm")


class HelmError(Exception):
    """A helm command failed. `reason` is CamelCase and stable; `retryable` says if trying again may help."""

    def __init__(self, reason: str, message: str, *, retryable: bool, detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.detail = detail


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith("error:"):
            return ln[len("error:") :].strip()
    return lines[-1] if lines else "helm failed without a message"


def classify(stderr: str, *, operation: str) -> HelmError:
    """Pure: helm's stderr to a reason a person and a program can act on."""
    text = stderr.lower()
    line = _last_error_line(stderr)[:600]
    if "values don't meet the specifications of the schema" in text:
        # helm names the failing fields on the lines after its "Error:" line.
        lines = [ln.strip(" -") for ln in stderr.strip().splitlines() if ln.strip()]
        start = next((i for i, ln in enumerate(lines) if "values don't meet" in ln.lower()), len(lines))
        # They come grouped under a "<chart>:" line; each gets its chart's name in front.
        chart, found = "", []
        for ln in lines[start + 1 :]:
            if ln.endswith(":") and " " not in ln:
                chart = ln
            else:
                found.append(f"{chart} {ln}" if chart else ln)
        fields = "; ".join(found)[:600] or line
        return HelmError(
            "ValuesSchemaViolation",
            f"The chart's values.schema.json rejected the values: {fields}. Fix spec.values or valuesFrom.",
            retryable=False,
            detail=stderr,
        )
    if "context deadline exceeded" in text or "timed out waiting for the condition" in text:
        return HelmError(
            "ReleaseNotReady",
            f"The release did not become ready within spec.timeout ({line}). Check the app's pods, or raise spec.timeout.",
            retryable=True,
            detail=stderr,
        )
    if "context canceled" in text:
        return HelmError("OperationCanceled", f"The {operation} was canceled.", retryable=True, detail=stderr)
    if (
        "parse error" in text
        or "execution error" in text
        or "failed to render" in text
        or "template:" in text
    ):
        return HelmError(
            "ChartRenderFailed",
            f"The chart could not be rendered with these values: {line}. Fix the values or choose another version.",
            retryable=False,
            detail=stderr,
        )
    if (
        "exists and cannot be imported into the current release" in text
        or "invalid ownership metadata" in text
    ):
        return HelmError(
            "ResourceConflict",
            f"An object the chart creates already belongs to something else: {line}. Remove it or use another release name.",
            retryable=False,
            detail=stderr,
        )
    if "another operation (install/upgrade/rollback) is in progress" in text:
        return HelmError(
            "ReleaseLocked", f"The release is locked by another operation: {line}.", retryable=True
        )
    if "namespaces" in text and "not found" in text:
        return HelmError(
            "TargetNamespaceNotFound", f"{line}. Create the namespace.", retryable=True, detail=stderr
        )
    if "forbidden" in text:
        return HelmError(
            "Forbidden", f"Helm was not allowed to {operation}: {line}.", retryable=True, detail=stderr
        )
    return HelmError(
        f"{operation.capitalize()}Failed", f"helm {operation} failed: {line}.", retryable=True, detail=stderr
    )


@dataclass(frozen=True)
class ReleaseRecord:
    """One revision of a release, as Helm stored it."""

    name: str
    namespace: str
    revision: int
    status: str
    """deployed, failed, superseded, pending-install, pending-upgrade, pending-rollback, uninstalling, ..."""
    chart_version: str | None = None
    manifest: str = field(default="", repr=False)
    modified_at: float | None = None
    """Unix time Helm last wrote this revision, from its storage labels."""


@dataclass(frozen=True)
class ReleaseHistory:
    revisions: tuple[ReleaseRecord, ...]
    """Newest first."""

    @property
    def current(self) -> ReleaseRecord | None:
        return self.revisions[0] if self.revisions else None

    @property
    def last_deployed(self) -> ReleaseRecord | None:
        return next((r for r in self.revisions if r.status in ("deployed", "superseded")), None)


def decode_release(data: str) -> dict[str, Any]:
    """Helm's storage format: base64 (by Helm) of gzip of JSON, inside a Secret's data."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    result: dict[str, Any] = json.loads(raw)
    return result


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
    ) -> None:
        super().__init__(executable=executable, history_max_revisions=history_max_revisions)
        self._exe = executable
        self._term_grace = term_grace
        self._acting_as = acting_as

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:  # noqa: A002 - pyhelm3's name
        args = [self._exe, *(str(part) for part in command), *impersonation_flags(self._acting_as)]
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


class Helm:
    def __init__(self, kube: Kube, *, executable: str, max_concurrent: int) -> None:
        self.kube = kube
        self._executable = executable
        self._command = _ExecCommand(executable=executable, history_max_revisions=10)
        self._gate = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self._slots_in_use = 0
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
                manifest = doc.get("manifest", "")
                chart_version = ((doc.get("chart") or {}).get("metadata") or {}).get("version")
            records.append(
                ReleaseRecord(
                    name=release,
                    namespace=namespace,
                    revision=int(labels.get("version", "0")),
                    status=labels.get("status", "unknown"),
                    chart_version=chart_version,
                    manifest=manifest,
                    modified_at=_unix(labels.get("modifiedAt") or labels.get("createdAt")),
                )
            )
        records.sort(key=lambda r: r.revision, reverse=True)
        return ReleaseHistory(tuple(records))

    async def manifest(self, release: str, namespace: str, revision: int) -> list[dict[str, Any]]:
        """The objects a revision rendered, read from Helm's storage and kept: revisions never change."""
        key = (namespace, release, revision)
        cached = self._manifests.get(key)
        if cached is None:
            body = await self.kube.get(Secret, f"sh.helm.release.v1.{release}.v{revision}", namespace)
            if body is None:
                return []
            data = (body.get("data") or {}).get("release", "")
            cached = await asyncio.to_thread(_manifest_of, data)
            if len(self._manifests) > 2048:
                self._manifests.clear()
            self._manifests[key] = cached
        return cached

    def slots_in_use(self) -> int:
        """Helm subprocesses running now, out of `max_concurrent` (for the runtime view)."""
        return self._slots_in_use

    def _as(self, who: Principal | None) -> _ExecCommand:
        """The commands, run with `who`'s permissions (None: the operator's)."""
        if who is None:
            return self._command
        return _ExecCommand(executable=self._executable, history_max_revisions=10, acting_as=who)

    async def _run(self, operation: str, coro: Any) -> Any:
        async with self._gate:
            metrics.HELM_SUBPROCESSES.labels(operation).inc()
            self._slots_in_use += 1
            try:
                return await coro
            except pyhelm3.errors.Error as exc:
                raise classify(exc.stderr.decode(errors="replace"), operation=operation) from None
            except FileNotFoundError as exc:
                raise HelmError(
                    "HelmNotFound", f"The helm binary was not found: {exc}.", retryable=False
                ) from None
            finally:
                self._slots_in_use -= 1

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
    ) -> ReleaseRecord:
        """`helm upgrade --install --wait`; values go on stdin, never on the command line."""
        result = await self._run(
            "install" if install else "upgrade",
            self._as(acting_as).install_or_upgrade(
                release,
                chart,
                dict(values),
                namespace=namespace,
                create_namespace=False,
                wait=True,
                timeout=f"{int(timeout_seconds)}s",
                description=description,
            ),
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
    ) -> None:
        await self._run(
            "rollback",
            self._as(acting_as).rollback(
                release, revision, namespace=namespace, wait=True, timeout=f"{int(timeout_seconds)}s"
            ),
        )

    async def uninstall(
        self, *, release: str, namespace: str, timeout_seconds: float, acting_as: Principal | None = None
    ) -> bool:
        """False when there was no release to uninstall."""
        try:
            await self._run(
                "uninstall",
                self._as(acting_as).uninstall(
                    release, namespace=namespace, wait=True, timeout=f"{int(timeout_seconds)}s"
                ),
            )
        except HelmError as err:
            if "not found" in err.message.lower():
                return False
            raise
        return True


def _unix(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def manifest_objects(manifest: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest (pure). Raises ValueError (UnsafeYAML) for a hostile one."""
    limits = safe_yaml.Limits(max_depth=128, seconds=10.0)
    return [
        d
        for d in safe_yaml.load_all(manifest, limits=limits, source="the release manifest")
        if isinstance(d, dict) and d.get("kind")
    ]


def _manifest_of(data: str) -> list[dict[str, Any]]:
    # A release record is in the app's namespace, where a tenant may write: read with bounds, and off
    # the event loop (argo-cd's 1.9 MB manifest took PyYAML's pure-Python loader 8.7 s).
    try:
        return manifest_objects(str(decode_release(data).get("manifest", "")))
    except ValueError:
        return []
