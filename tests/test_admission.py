"""What the API server refuses before the operator sees it: the CRD's bounds and the chart's admission policy.

The CRD bounds every string and list of an AppInstall's spec and the top level of spec.values; the
chart's ValidatingAdmissionPolicy bounds the depth of spec.values and the size of each map and list in
it. Both are checked here against the real API server, with the policy bound to one test namespace.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support.cluster import BIN, ROOT, Cluster
from support.hostile import appinstall_json, create_raw, nested_json
from support.wait import wait_for

CHART = ROOT / "charts" / "kubemart"
SPEC = {"source": "s", "app": "hello"}


def _tree(leaves: int) -> dict[str, Any]:
    """Maps 8 levels deep, 4 keys wide, `leaves` scalars at the bottom."""
    root: dict[str, Any] = {}
    for i in range(leaves):
        node = root
        for level in range(7):
            node = node.setdefault(f"l{level}_{(i >> (2 * level)) & 3}", {})
        node[f"leaf{i}"] = i
    return root


def wide(keys: int) -> str:
    return json.dumps({f"k{i}": i for i in range(keys)})


@pytest.mark.parametrize(
    ("spec", "values", "answer"),
    [
        pytest.param({"source": "s", "app": "a" * 600_000}, None, "Too long", id="600 KB spec.app"),
        pytest.param({"source": "s" * 254, "app": "a"}, None, "Too long", id="254-character source"),
        pytest.param(
            {**SPEC, "valuesFrom": [{"kind": "ConfigMap", "name": f"c{i}"} for i in range(17)]},
            None,
            "Too many",
            id="17 valuesFrom",
        ),
        pytest.param(
            {**SPEC, "valuesFrom": [{"kind": "ConfigMap", "name": "c", "key": "../etc"}]},
            None,
            "spec.valuesFrom[0].key",
            id="key that is no ConfigMap key",
        ),
        pytest.param(SPEC, wide(1001), "spec.values: Too many", id="1001 top-level values"),
        pytest.param({**SPEC, "timeout": "1" * 65 + "s"}, None, "Too long", id="long timeout"),
    ],
)
def test_the_crd_refuses_unbounded_strings_and_lists(
    cluster: Cluster, crds: None, namespace: str, spec: dict[str, Any], values: str | None, answer: str
) -> None:
    created, message = create_raw(cluster, namespace, appinstall_json("bad", spec, values_json=values))
    assert not created
    assert answer in message, message[:500]
    assert len(message) < 5000


@pytest.fixture
def values_policy(cluster: Cluster, crds: None, namespace: str) -> Iterator[str]:
    """The chart's policy (as `helm template` renders it), bound only to `namespace`."""
    release = f"t{uuid.uuid4().hex[:6]}"
    rendered = subprocess.run(
        [str(BIN / "helm"), "template", release, str(CHART), "-s", "templates/admission-policy.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    binding = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding")
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    applied = subprocess.run(
        [str(BIN / "kubectl"), "apply", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    yield namespace
    for d in docs:
        cluster.run("kubectl", "delete", d["kind"], d["metadata"]["name"], "--ignore-not-found", check=False)


def _policy_acts(cluster: Cluster, namespace: str) -> bool:
    created, answer = create_raw(
        cluster, namespace, appinstall_json("probe", SPEC, values_json=nested_json(40))
    )
    if created:
        cluster.run("kubectl", "delete", "appinstall", "probe", "-n", namespace, "--wait=false")
        return False
    return "may nest at most 32 levels" in answer


DEEP_OR_WIDE = [
    pytest.param(nested_json(33, "1"), id="33 levels"),
    pytest.param(nested_json(1_000), id="1000 levels"),
    pytest.param(nested_json(9_990), id="9990 levels"),
    pytest.param(json.dumps({"a": {"b": list(range(1001))}}), id="list of 1001"),
    pytest.param(json.dumps({"a": {"b": {"c": {f"k{i}": 1 for i in range(1001)}}}}), id="map of 1001"),
    pytest.param('{"a": [' + ",".join(["[]"] * 200_000) + "]}", id="list of 200000 empty lists"),
    pytest.param('{"a": ' + "[" * 40 + "]" * 40 + "}", id="40 lists deep"),
]


def test_the_chart_policy_refuses_deep_or_wide_values_at_once(cluster: Cluster, values_policy: str) -> None:
    namespace = values_policy
    wait_for(lambda: _policy_acts(cluster, namespace), timeout=60, what="the policy in force")
    for i, param in enumerate(DEEP_OR_WIDE):
        (values,) = param.values
        start = time.monotonic()
        created, answer = create_raw(
            cluster, namespace, appinstall_json(f"bad-{i}", SPEC, values_json=values)
        )
        took = time.monotonic() - start
        assert not created, param.id
        assert (
            "spec.values may nest at most 32 levels, with at most 1000 keys in a map and 1000 items" in answer
        )
        # The API server itself takes ~5 s to decode and store 9,990 levels with no policy at all (its
        # cost grows with the square of the depth); the policy adds under a second to that.
        assert took < 15, f"{param.id}: the API server took {took:.1f}s"


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(nested_json(32, "1"), id="exactly 32 levels"),
        pytest.param(
            json.dumps({"image": {"tag": "1"}, "env": [{"name": "A", "value": "b"}] * 1000, "n": None}),
            id="a list of 1000",
        ),
        pytest.param(
            json.dumps({f"c{i}": {"replicas": i, "args": ["--x"]} for i in range(300)}), id="300 components"
        ),
        # ~42,000 nodes: past the API server's CEL cost budget, so the policy cannot finish; it lets the
        # object through (failurePolicy Ignore) and the operator refuses it with a clear condition.
        pytest.param(json.dumps(_tree(20_000)), id="too large to check"),
    ],
)
def test_the_chart_policy_admits_ordinary_values(cluster: Cluster, values_policy: str, values: str) -> None:
    namespace = values_policy
    wait_for(lambda: _policy_acts(cluster, namespace), timeout=60, what="the policy in force")
    created, answer = create_raw(cluster, namespace, appinstall_json("ok", SPEC, values_json=values))
    assert created, answer[:500]


def test_an_object_admitted_before_the_policy_can_still_be_labelled_fixed_and_deleted(
    cluster: Cluster, crds: None, namespace: str, request: pytest.FixtureRequest
) -> None:
    created, answer = create_raw(
        cluster, namespace, appinstall_json("old", SPEC, values_json=nested_json(500))
    )
    assert created, answer
    request.getfixturevalue("values_policy")
    wait_for(lambda: _policy_acts(cluster, namespace), timeout=60, what="the policy in force")

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return cluster.run("kubectl", *args, "-n", namespace, check=False)

    # Metadata (the operator's finalizer, people's labels) can be written: the spec is not new.
    assert kubectl("label", "appinstall", "old", "team=a").returncode == 0
    patch = json.dumps({"metadata": {"finalizers": ["kubemart.io/finalizer"]}})
    assert kubectl("patch", "appinstall", "old", "--type=merge", "-p", patch).returncode == 0
    # A new spec is checked: still too deep is refused, a fixed one admitted.
    still_deep = json.dumps({"spec": {"values": {"b": 1}}})  # merge patch: the deep "a" stays
    refused = kubectl("patch", "appinstall", "old", "--type=merge", "-p", still_deep)
    assert refused.returncode != 0
    assert "may nest at most 32 levels" in refused.stderr
    fixed = json.dumps([{"op": "replace", "path": "/spec/values", "value": {"replicaCount": 1}}])
    assert kubectl("patch", "appinstall", "old", "--type=json", "-p", fixed).returncode == 0
    no_finalizer = json.dumps({"metadata": {"finalizers": None}})
    assert kubectl("patch", "appinstall", "old", "--type=merge", "-p", no_finalizer).returncode == 0
    assert kubectl("delete", "appinstall", "old").returncode == 0


def _render_policy(*sets: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "helm"), "template", "km", str(CHART), *(f"--set={s}" for s in sets)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d and d["kind"].startswith("ValidatingAdmissionPolicy")]


def test_the_policy_follows_the_operators_depth_setting_and_can_be_left_out() -> None:
    policy, binding = _render_policy("settings.valuesMaxDepth=5", "admissionPolicy.maxItems=7")
    (check,) = policy["spec"]["validations"]
    assert "all(c5, type(c5) != map && type(c5) != list)" in check["expression"]
    assert "c6" not in check["expression"]
    assert "size(c0) <= 7" in check["expression"]
    assert "may nest at most 5 levels" in check["message"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert _render_policy("admissionPolicy.enabled=false") == []
