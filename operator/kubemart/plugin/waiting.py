"""Waiting for an AppInstall to reach a state, as `--wait` does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from kubemart.plugin.api import Market, PluginError
from kubemart.plugin.options import note
from kubemart.plugin.views import (
    WaitState,
    condition,
    install_state,
)

P = ParamSpec("P")
R = TypeVar("R")
KIND = "appinstall.kubemart.io"
_POLL_SECONDS = 1.0


# --- waiting ---------------------------------------------------------------------------------------------


def poll(
    what: str,
    probe: Callable[[], tuple[WaitState, dict[str, Any] | None]],
    *,
    goal: str,
    timeout: float,
    quiet: bool,
) -> dict[str, Any] | None:
    """Probe until done; progress lines go to stderr, so that -o output stays a clean document."""
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        state, obj = probe()
        if state.failed:
            raise PluginError(f"{what} failed: {state.summary}")
        if state.summary != said and not quiet:
            note(f"{what}: {state.summary}")
            said = state.summary
        if state.done:
            return obj
        if time.monotonic() >= deadline:
            raise PluginError(
                f"timed out after {timeout:g}s waiting for {what} {goal}; last: {state.summary}"
            )
        time.sleep(_POLL_SECONDS)


def wait_for_phase(
    market: Market, name: str, *, want_phase: str, timeout: float, quiet: bool
) -> dict[str, Any]:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        return install_state(obj, want_phase=want_phase), obj

    obj = poll(name, probe, goal=f"to be {want_phase}", timeout=timeout, quiet=quiet)
    assert obj is not None  # install_state is never done for a missing object
    return obj


def wait_handled(market: Market, name: str, stamp: str, *, timeout: float, quiet: bool) -> dict[str, Any]:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        if obj is None:
            return WaitState(False, True, "it was deleted"), None
        status = obj.get("status") or {}
        if status.get("lastHandledReconcileAt") != stamp:
            return WaitState(False, False, "waiting for the operator to take the retry"), obj
        message = (condition(obj, "Ready") or {}).get("message")
        summary = f"retried; {status.get('phase') or 'Pending'}" + (f": {message}" if message else "")
        return WaitState(True, False, summary), obj

    obj = poll(name, probe, goal="to be retried", timeout=timeout, quiet=quiet)
    assert obj is not None
    return obj


def wait_gone(market: Market, name: str, *, timeout: float) -> None:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        if obj is None:
            return WaitState(True, False, "uninstalled"), None
        return WaitState(False, False, (obj.get("status") or {}).get("phase") or "Uninstalling"), obj

    poll(name, probe, goal="to be uninstalled", timeout=timeout, quiet=False)
