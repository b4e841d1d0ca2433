"""How an uploaded chart is stored: one labelled Secret per chart version (pure; docs/sources/upload.md).

The plugin writes these objects with the person's own credentials and the operator reads them; both
take names, labels and keys from here, so they cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from kubemart.domain.chart_archive import ChartArchive

UPLOAD_LABEL = "kubemart.io/upload"
UPLOAD_LABEL_VALUE = "chart"
"""Every stored chart carries kubemart.io/upload=chart: the operator lists by it."""
WATCH_LABEL = "kubemart.io/watch"
WATCH_LABEL_VALUE = "upload"
"""And kubemart.io/watch=upload: the operator's Secret watch is filtered by the API server on
kubemart.io/watch, so it never receives the cluster's other Secrets (helm's release records churn)."""
CHART_LABEL = "kubemart.io/chart"
SECRET_TYPE = "kubemart.io/chart"
"""A type of its own, so that no other Secret is mistaken for a chart, nor a chart for a credential."""
DATA_KEY = "chart.tgz"
DIGEST_ANNOTATION = "kubemart.io/chart-digest"
VERSION_ANNOTATION = "kubemart.io/chart-version"
_UNSAFE = re.compile(r"[^a-z0-9.-]+")


def secret_name(name: str, version: str) -> str:
    """`chart-<name>-<version>`, DNS-safe; a short hash of the exact version when it had to change."""
    safe = _UNSAFE.sub("-", version.lower()).strip(".-")[:100]
    if safe != version:
        safe = f"{safe}-{hashlib.sha256(version.encode()).hexdigest()[:8]}".strip(".-")
    return f"chart-{name}-{safe}"


def secret_body(chart: ChartArchive, data: bytes, namespace: str) -> dict[str, Any]:
    """The Secret that stores `data` (the archive `chart` was read from) in `namespace`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {
            "name": secret_name(chart.name, chart.version),
            "namespace": namespace,
            "labels": {
                UPLOAD_LABEL: UPLOAD_LABEL_VALUE,
                WATCH_LABEL: WATCH_LABEL_VALUE,
                CHART_LABEL: chart.name,
            },
            "annotations": {
                VERSION_ANNOTATION: chart.version,
                DIGEST_ANNOTATION: f"sha256:{chart.digest}",
            },
        },
        "data": {DATA_KEY: base64.b64encode(data).decode()},
    }


def stored_digest(body: dict[str, Any]) -> str | None:
    """The digest annotation of a stored chart (what the plugin wrote; the operator hashes the data)."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    return str(value) if value else None
