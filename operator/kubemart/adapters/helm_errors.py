"""helm's failures, from its stderr to a stable reason a person and a program can act on (pure)."""

from __future__ import annotations

import re


class HelmError(Exception):
    """A helm command failed. `reason` is CamelCase and stable; `retryable` says if trying again may help."""

    def __init__(self, reason: str, message: str, *, retryable: bool, detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.detail = detail


def _last_error_line(stderr: str) -> str:
    """helm's error, with its cause: a multi-error ("1 error occurred:") lists the causes on the lines
    after its "Error:" line, as `* ...` bullets; they are what a person needs to read."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        ln = lines[i]
        if ln.lower().startswith("error:"):
            head = ln[len("error:") :].strip()
            causes = [c.lstrip("*").strip() for c in lines[i + 1 :] if c.startswith("*")]
            if causes:
                head = re.sub(r"\s*\d+ errors? occurred:?$", "", head).rstrip(" :")
                return f"{head}: {'; '.join(causes)}" if head else "; ".join(causes)
            return head
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
    if " is invalid: " in text or ("admission webhook" in text and "denied the request" in text):
        return HelmError(
            "ObjectRejected",
            f"The API server rejected an object of the chart: {line}. Fix the values or choose another version.",
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


# What Olares injects at install time (beclab/apps: userspace in 228 templates, olaresEnv 115, domain
# 111, postgres 61, bfl 53); a chart that reads them renders only when they are given.
_INJECTED = re.compile(
    r"\.Values\.(userspace|olaresEnv|domain|postgres|bfl|redis|mongodb|zinc|nats|admin|os)\b"
)


def with_injected_values_hint(err: HelmError) -> HelmError:
    """A render failure of an Olares app on a value Olares injects, said as such (InjectedValuesMissing)
    with what to do. Call it for Olares apps only: other charts may name their own values so."""
    if err.reason != "ChartRenderFailed":
        return err
    found = _INJECTED.search(err.message)
    if found is None:
        return err
    return HelmError(
        "InjectedValuesMissing",
        f"The chart reads .Values.{found.group(1)}, which Olares injects at install time and nothing gave "
        f"here: {err.message} Give these values in the MarketSource's spec.values (defaults for all its "
        "apps; see docs/sources/olares.md) or in this AppInstall's spec.values.",
        retryable=False,
        detail=err.detail,
    )
