"""Reading the API server's own request counters, to count writes without trusting the operator."""

from __future__ import annotations

import re

_MUTATING = re.compile(r'verb="(POST|PUT|PATCH|DELETE|APPLY)"')


def mutating_requests(metrics_text: str, resource: str) -> float:
    """Sum of apiserver_request_total for mutating verbs on `resource`."""
    total = 0.0
    for line in metrics_text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and f'resource="{resource}"' in line
            and _MUTATING.search(line)
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total
