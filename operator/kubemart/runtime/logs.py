"""Log lines for people (text, the default) or for log pipelines (JSON lines: KUBEMART_LOG_FORMAT=json).

A line about an object carries its kind, namespace and name, in both formats. kopf's per-object
loggers attach them as the `k8s_ref` extra; a reconcile loop runs each object's task in a context
that names the object (`bind`), so everything that task logs (helm commands, status writes, events
not posted) is tagged without the services passing the object around. An explicit `extra=ref(...)`
wins over the context, for a line about some other object.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(object)s%(message)s"


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    """Empty for cluster-scoped objects."""
    name: str


CURRENT: contextvars.ContextVar[ObjectRef | None] = contextvars.ContextVar("kubemart_object", default=None)


def bind(kind: str, namespace: str, name: str) -> contextvars.Context:
    """A copy of the current context in which log lines are about this object: run a task in it."""
    ctx = contextvars.copy_context()
    ctx.run(CURRENT.set, ObjectRef(kind, namespace, name))
    return ctx


def ref(kind: str | None, namespace: str | None, name: str | None) -> dict[str, Any]:
    """`extra=` for one log call about an object; the same shape as kopf's own `k8s_ref`."""
    return {"k8s_ref": {"kind": kind, "namespace": namespace or None, "name": name}}


def ref_of(body: dict[str, Any]) -> dict[str, Any]:
    """`extra=` for a line about the object whose body this is."""
    meta = body.get("metadata") or {}
    return ref(body.get("kind"), meta.get("namespace"), meta.get("name"))


def object_of(record: logging.LogRecord) -> ObjectRef | None:
    """The object a record is about: its `k8s_ref` extra (kopf's or ours), else the task's context."""
    explicit = getattr(record, "k8s_ref", None)
    if isinstance(explicit, dict) and explicit.get("name"):
        return ObjectRef(
            str(explicit.get("kind") or ""), str(explicit.get("namespace") or ""), str(explicit["name"])
        )
    return CURRENT.get()


class ObjectFields(logging.Filter):
    """Puts the object on the record (as `k8s_object`) while the logging call's context is current.

    A handler's filter runs in the thread and context of the logging call, before formatting.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "k8s_object"):
            record.k8s_object = object_of(record)
        return True


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [Kind namespace/name] message`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created)

    def format(self, record: logging.LogRecord) -> str:
        obj: ObjectRef | None = getattr(record, "k8s_object", None)
        record.object = ""
        if obj is not None:
            where = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
            record.object = f"[{obj.kind} {where}] " if obj.kind else f"[{where}] "
        return super().format(record)


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, and kind/namespace/name when about an object.

    Only these fields are written (and exc_info for a bug's traceback): other libraries' extras,
    such as kopf's operator settings, stay out.
    """

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = _iso(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        obj: ObjectRef | None = getattr(record, "k8s_object", None)
        if obj is not None:
            if obj.kind:
                log_data["kind"] = obj.kind
            if obj.namespace:
                log_data["namespace"] = obj.namespace
            log_data["name"] = obj.name
        for key in ("exc_info", "stack_info"):
            if message_dict.get(key):
                log_data[key] = message_dict[key]


def handler(log_format: str) -> logging.Handler:
    """A stderr handler writing `text` or `json` lines, with objects on every line about one."""
    out = logging.StreamHandler(sys.stderr)
    out.addFilter(ObjectFields())
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return out


def configure(log_format: str, *, verbose: bool = False) -> None:
    """The root logger writes through `handler(log_format)` only."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Python's warnings (e.g. a coroutine never awaited, at shutdown) as log lines too: in JSON mode a
    # bare line on stderr would break the one-object-a-line promise.
    logging.captureWarnings(True)
