"""The Argo CD health checks of docs/argocd/ on recorded objects, and the sandbox they run in.

The objects under tests/fixtures/health/ were captured from the real operator by
tests/test_health_checks.py (KUBEMART_RECORD_HEALTH_FIXTURES=1); here they are read back without a
cluster. bin/luahealth and bin/kstatus are built by hack/build.sh (`make setup`).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import BIN
from support.health import DOCS, EXPECTED, FIXTURES, argo_health, fixture_path, kstatus

KINDS = ("AppInstall", "MarketSource", "Payment", "NotificationSink")

needs_tools = pytest.mark.skipif(
    not (BIN / "luahealth").exists() or not (BIN / "kstatus").exists(),
    reason="bin/luahealth and bin/kstatus are built by hack/build.sh",
)


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_path(name).read_text())  # type: ignore[no-any-return]


def test_the_argocd_cm_snippet_holds_the_lua_files_byte_for_byte() -> None:
    data = yaml.safe_load((DOCS / "argocd-cm.yaml").read_text())["data"]
    for kind in KINDS:
        key = f"resource.customizations.health.kubemart.io_{kind}"
        assert data[key] == (DOCS / f"{kind}.lua").read_text(), (
            f"{key} in docs/argocd/argocd-cm.yaml differs from docs/argocd/{kind}.lua: copy the script over"
        )
    assert set(data) == {f"resource.customizations.health.kubemart.io_{k}" for k in KINDS}


def test_the_chart_ships_the_same_argocd_cm_snippet() -> None:
    chart_copy = DOCS.parents[1] / "charts" / "kubemart" / "argocd" / "argocd-cm.yaml"
    assert yaml.safe_load(chart_copy.read_text()) == yaml.safe_load((DOCS / "argocd-cm.yaml").read_text()), (
        "charts/kubemart/argocd/argocd-cm.yaml differs from docs/argocd/argocd-cm.yaml: copy it over"
    )


def test_every_expectation_has_a_recorded_object_and_every_recording_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@needs_tools
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_recorded_object_reads_as_expected(name: str) -> None:
    obj, want = fixture(name), EXPECTED[name]
    assert obj["kind"] == want.kind
    assert argo_health(obj)["status"] == want.argo
    assert kstatus(obj)["status"] == want.kstatus
    # The scripts need none of Lua's standard library, so they read the same when it is opened.
    assert argo_health(obj, open_libs=True)["status"] == want.argo


@needs_tools
@pytest.mark.parametrize("kind", KINDS)
def test_an_object_the_operator_has_not_seen_is_progressing(kind: str) -> None:
    fresh = {"apiVersion": "kubemart.io/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": 1}}
    assert argo_health(fresh)["status"] == "Progressing"
    # kstatus has nothing to go by and calls it Current: only Argo CD's check waits for the operator.
    assert kstatus(fresh)["status"] == "Current"


@needs_tools
@pytest.mark.parametrize("name", ["appinstall-running", "marketsource-ready", "payment-verified"])
def test_a_new_generation_or_a_deletion_is_progressing_until_handled(name: str) -> None:
    newer = copy.deepcopy(fixture(name))
    newer["metadata"]["generation"] += 1
    assert argo_health(newer)["status"] == "Progressing"
    assert kstatus(newer)["status"] == "InProgress"
    deleting = copy.deepcopy(fixture(name))
    deleting["metadata"]["deletionTimestamp"] = "2026-11-22T00:00:00Z"
    assert argo_health(deleting)["status"] == "Progressing"
    assert kstatus(deleting)["status"] == "Terminating"


# --- luahealth runs scripts the way Argo CD does ------------------------------------------------


def luahealth(tmp_path: Path, script: str, *flags: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.lua"
    path.write_text(script)
    obj = json.dumps({"kind": "AppInstall", "metadata": {"name": "x", "generation": 2}})
    return subprocess.run(
        [str(BIN / "luahealth"), *flags, str(path), "-"],
        input=obj,
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_tools
def test_the_object_is_the_global_obj_and_numbers_are_numbers(tmp_path: Path) -> None:
    out = luahealth(
        tmp_path, 'return {status = "Healthy", message = obj.metadata.name .. (obj.metadata.generation + 1)}'
    )
    assert json.loads(out.stdout) == {"status": "Healthy", "message": "x3"}


@needs_tools
def test_a_status_argo_cd_does_not_know_reads_unknown(tmp_path: Path) -> None:
    out = luahealth(tmp_path, 'return {status = "Fine"}')
    assert json.loads(out.stdout) == {"status": "Unknown", "message": "Lua returned an invalid health status"}


@needs_tools
def test_the_string_library_is_closed_unless_opened(tmp_path: Path) -> None:
    script = 'return {status = "Healthy", message = string.upper("ok")}'
    closed = luahealth(tmp_path, script)
    assert closed.returncode == 1
    assert "string" in closed.stderr
    assert json.loads(luahealth(tmp_path, script, "-open-libs").stdout)["message"] == "OK"


@needs_tools
def test_os_offers_only_time_and_date(tmp_path: Path) -> None:
    out = luahealth(
        tmp_path, 'return {status = "Healthy", message = tostring(os.time() > 0) .. tostring(os.execute)}'
    )
    assert json.loads(out.stdout)["message"] == "truenil"


@needs_tools
def test_a_script_that_never_ends_is_stopped_after_a_second(tmp_path: Path) -> None:
    out = luahealth(tmp_path, "while true do end")
    assert out.returncode == 1
    assert "deadline" in out.stderr
