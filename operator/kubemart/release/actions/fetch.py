"""Fetch the desired chart into the local cache (the source's one request, or none when cached)."""

from __future__ import annotations

from kubemart.release.outcome import Failure, Note, Outcome
from kubemart.release.state import ReleaseState
from kubemart.sources.base import ChartFetchError
from kubemart.sources.charts import Charts
from kubemart.sources.verify import VerificationError


async def fetch(charts: Charts, state: ReleaseState) -> Outcome:
    assert state.source is not None
    assert state.desired is not None
    try:
        await charts.fetch(state.source, state.desired.version, app=state.spec.app)
    except ChartFetchError as err:
        # A download that may work later is ChartDownloadFailed, whatever the server said (the message
        # says it); one that cannot work until the catalog changes keeps its own reason, and is Stalled.
        # Verification keeps its reason either way: the network is not what is in the way.
        keep = not err.retryable or isinstance(err, VerificationError)
        reason = err.reason if keep else "ChartDownloadFailed"
        return Outcome(
            failure=Failure(reason, err.message, err.retryable),
            notes=(Note("Warning", reason, err.message, only_on_change=True),),
        )
    return Outcome()
