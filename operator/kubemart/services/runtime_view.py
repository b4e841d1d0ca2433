"""The runtime view's inputs: the reconcile loops' bodies and what the operator's parts report.

Gathered on request from memory (no API call), then shaped by the pure `runtime_state.snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubemart import __version__
from kubemart.adapters.helm import Helm
from kubemart.runtime.controller import Controller
from kubemart.runtime.runtime_state import Components, Filters, snapshot
from kubemart.services.drift_watch import DriftWatcher
from kubemart.services.webhook_server import WebhookServer


@dataclass
class RuntimeView:
    sources: Controller
    apps: Controller
    payments: Controller
    helm: Helm
    drift: DriftWatcher
    webhooks: WebhookServer
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def components(self) -> Components:
        alive, total = self.drift.alive()
        return Components(
            version=__version__,
            started_at=self.started_at,
            controllers={c.name: c.stats() for c in (self.sources, self.apps, self.payments)},
            helm_slots_in_use=self.helm.slots_in_use(),
            helm_slots_max=self.helm.max_concurrent,
            drift_watches_alive=alive,
            drift_watches_total=total,
            webhook_server=self.webhooks.running,
        )

    def state(self, filters: Filters) -> dict[str, Any]:
        return snapshot(
            sources=self.sources.latest().values(),
            apps=self.apps.latest().values(),
            payments=self.payments.latest().values(),
            components=self.components(),
            filters=filters,
            now=datetime.now(UTC),
        )
