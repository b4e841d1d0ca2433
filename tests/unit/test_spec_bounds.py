"""Every user string and list of an AppInstall's spec is bounded, and a message can always be written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubemart.domain.conditions import Summary, conditions_for
from kubemart.models.appinstall import AppInstall
from kubemart.models.resource import MESSAGE_MAX_LENGTH, Condition, ConditionStatus

CRD = Path(__file__).resolve().parents[2] / "crds" / "appinstalls.kubemart.io.yaml"


def _unbounded(node: dict[str, Any], path: str) -> list[str]:
    out: list[str] = []
    kind = node.get("type")
    if kind == "string" and "maxLength" not in node and "enum" not in node:
        out.append(path)
    if kind == "array" and "maxItems" not in node:
        out.append(path)
    if node.get("x-kubernetes-preserve-unknown-fields") and "maxProperties" not in node:
        out.append(path)
    for name, child in (node.get("properties") or {}).items():
        out += _unbounded(child, f"{path}.{name}")
    if "items" in node:
        out += _unbounded(node["items"], f"{path}[]")
    return out


def test_every_string_list_and_free_form_object_of_the_spec_is_bounded() -> None:
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _unbounded(spec, "spec") == []


def test_condition_messages_are_cut_so_that_a_status_can_be_written() -> None:
    long = Condition(
        type="Ready",
        status=ConditionStatus.FALSE,
        reason="AppNotFound",
        message="App " + "a" * 600_000 + " is not in the catalog",
        last_transition_time=datetime.now(UTC),
    )
    assert len(long.message) == MESSAGE_MAX_LENGTH
    assert long.message.endswith("...")
    (ready,) = conditions_for(
        Summary(False, "AppNotFound", "x" * 100_000), generation=1, previous=[long], now=datetime.now(UTC)
    )
    assert len(ready.message) == MESSAGE_MAX_LENGTH
    short = Condition(
        type="Ready",
        status=ConditionStatus.TRUE,
        reason="Succeeded",
        message="ok",
        last_transition_time=datetime.now(UTC),
    )
    assert short.message == "ok"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"source": "s", "app": "a" * 600_000}, id="600 KB app"),
        pytest.param(
            {"source": "s", "app": "a", "values": {f"k{i}": i for i in range(5000)}}, id="5000 values"
        ),
    ],
)
def test_a_spec_admitted_before_the_bounds_is_refused_with_a_short_message(spec: dict[str, Any]) -> None:
    body = {"metadata": {"name": "x", "namespace": "n"}, "spec": spec}
    with pytest.raises(ValidationError) as caught:
        AppInstall.model_validate(body)
    assert len(str(caught.value)) < 1000, "pydantic quotes the input cut short"
