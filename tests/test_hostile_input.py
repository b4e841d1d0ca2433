"""Hostile objects and inputs (issue #9): the operator stays up and quick, and says what is wrong.

An AppInstall whose spec.values is nested as deep as the API server stores (it refuses 10,000 levels),
values documents that are valid YAML but not what helm takes, an alias bomb: each ends as a condition
with a reason and one Event, while other apps keep installing, with no traceback in the log and the
event loop never held for a second.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from support.apps import install, running
from support.cluster import Cluster
from support.hostile import (
    alias_bomb,
    appinstall_json,
    condition_of,
    create_raw,
    nested_json,
    status_of,
)
from support.kube import Objects
from support.operator_process import OperatorProcess
from support.wait import wait_for

DEPTHS = {"deep-1000": 1_000, "deep-5000": 5_000, "deep-9990": 9_990}
"""9,990 levels: about the most the API server stores (its JSON decoder refuses 10,000)."""


def refused(cluster: Cluster, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    status = status_of(cluster, namespace, name)
    ready = condition_of(status)
    if ready and ready["status"] == "False" and ready["reason"] == reason:
        return status
    return None


def warnings(objects: Objects, namespace: str, name: str, reason: str) -> list[str]:
    return [m for t, r, m in objects.events_for(name, namespace) if t == "Warning" and r == reason]


def test_values_nested_thousands_deep_are_refused_and_survive_a_restart(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    log_start = operator.log_size()
    for name, depth in DEPTHS.items():
        created, answer = create_raw(
            cluster,
            namespace,
            appinstall_json(name, {"source": catalog, "app": "hello"}, values_json=nested_json(depth)),
        )
        assert created, answer
    install(objects, namespace, "fine", source=catalog, app="hello")

    # Other apps keep installing while the deep ones are refused.
    wait_for(lambda: running(objects, namespace, "fine"), timeout=120, what="a good app Running")
    for name in DEPTHS:
        status = wait_for(
            lambda name=name: refused(cluster, namespace, name, "InvalidSpec"),
            timeout=60,
            what=f"{name} refused",
        )
        ready = condition_of(status)
        assert ready is not None
        assert "spec.values is nested more than 32 levels deep" in ready["message"]
        assert "flatten it" in ready["message"]
        assert len(ready["message"]) < 200, "the message does not echo the values"
        assert condition_of(status, "Stalled") is not None
        assert status["phase"] == "Failed"
        wait_for(
            lambda name=name: warnings(objects, namespace, name, "InvalidSpec"), timeout=30, what="Event"
        )
    log = operator.log(log_start)
    assert "Traceback" not in log
    assert "RecursionError" not in log
    assert operator.metric("kubemart_event_loop_lag_max_seconds") < 1.0

    # At start-up the initial LIST holds them all: the operator starts, and goes on working.
    operator.stop()
    restart_log = operator.log_size()
    operator.start()
    install(objects, namespace, "after-restart", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "after-restart"), timeout=120, what="Running after restart")
    for name in DEPTHS:
        assert refused(cluster, namespace, name, "InvalidSpec"), name
        assert len(warnings(objects, namespace, name, "InvalidSpec")) == 1, "one Event, not one per start"
    log = operator.log(restart_log)
    assert "Traceback" not in log
    assert "RecursionError" not in log
    assert operator.metric("kubemart_event_loop_lag_max_seconds") < 1.0


def test_values_documents_helm_cannot_take_get_a_condition_and_no_traceback(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
) -> None:
    documents = {
        "bomb": alias_bomb(),  # ~370 bytes that expand to 9**9 strings
        "binary": "message: hi\ncert: !!binary aGVsbG8=\n",
        "date": "message: hi\nbuildDate: 2024-01-01\n",  # valid for helm: a string
    }
    core = client.CoreV1Api(k8s)
    log_start = operator.log_size()
    for name, text in documents.items():
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"values.yaml": text})
        )
        install(
            objects,
            namespace,
            name,
            source=catalog,
            app="hello",
            valuesFrom=[{"kind": "ConfigMap", "name": name}],
        )

    for name, words in {
        "bomb": ["expands to more than", "aliases", "(line "],
        "binary": ["!!binary values are not allowed", "(line 2)"],
    }.items():
        status = wait_for(
            lambda name=name: refused(cluster, namespace, name, "InvalidValues"),
            timeout=60,
            what=f"{name} refused",
        )
        ready = condition_of(status)
        assert ready is not None
        assert ready["message"].startswith(f"ConfigMap {namespace}/{name} key values.yaml")
        for word in words:
            assert word in ready["message"], ready["message"]
        assert condition_of(status, "Stalled") is not None
        wait_for(
            lambda name=name: warnings(objects, namespace, name, "InvalidValues"), timeout=30, what="Event"
        )

    wait_for(lambda: running(objects, namespace, "date"), timeout=120, what="the app with a date Running")
    given = cluster.run("helm", "get", "values", "date", "-n", namespace, "-o", "json").stdout
    assert json.loads(given)["buildDate"] == "2024-01-01", "helm was given the date as the string it wrote"

    log = operator.log(log_start)
    assert "Traceback" not in log
    assert operator.metric("kubemart_event_loop_lag_max_seconds") < 1.0
