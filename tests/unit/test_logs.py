"""Log lines: text for people, JSON lines on request, and the object a line is about in both."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest

from kubemart.runtime import logs


@pytest.fixture(params=["text", "json"])
def captured(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO, logging.Logger]]:
    out = io.StringIO()
    handler = logs.handler(request.param)
    handler.setStream(out)  # type: ignore[attr-defined]
    logger = logging.getLogger(f"kubemart.test.{request.param}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield request.param, out, logger
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_a_line_about_nothing_has_no_object(captured: tuple[str, io.StringIO, logging.Logger]) -> None:
    fmt, out, logger = captured
    logger.info("started %s", "0.1.0")
    (line,) = lines(out)
    if fmt == "json":
        record = json.loads(line)
        assert set(record) == {"time", "level", "logger", "message"}
        assert record["level"] == "INFO"
        assert record["logger"] == "kubemart.test.json"
        assert record["message"] == "started 0.1.0"
        assert record["time"].endswith("Z")
    else:
        assert line.endswith("INFO    kubemart.test.text started 0.1.0")


def test_a_task_bound_to_an_object_tags_every_line(captured: tuple[str, io.StringIO, logging.Logger]) -> None:
    fmt, out, logger = captured

    async def reconcile() -> None:
        logger.info("running command: helm upgrade wiki")
        await asyncio.sleep(0)
        logger.warning("command failed")

    async def main() -> None:
        await asyncio.create_task(reconcile(), context=logs.bind("AppInstall", "team-a", "wiki"))
        logger.info("outside")

    asyncio.run(main())
    first, second, outside = lines(out)
    if fmt == "json":
        for line in (first, second):
            record = json.loads(line)
            assert (record["kind"], record["namespace"], record["name"]) == ("AppInstall", "team-a", "wiki")
        assert "name" not in json.loads(outside)
    else:
        assert "[AppInstall team-a/wiki] running command: helm upgrade wiki" in first
        assert "[AppInstall team-a/wiki] command failed" in second
        assert "[" not in outside


def test_an_explicit_reference_wins_and_kopf_refs_are_read(
    captured: tuple[str, io.StringIO, logging.Logger],
) -> None:
    fmt, out, logger = captured

    async def main() -> None:
        async def inner() -> None:
            logger.info("about a source", extra=logs.ref("MarketSource", None, "demo"))
            # kopf's per-object loggers: k8s_ref, with apiVersion and uid too, and the operator settings.
            kopf_ref = {"apiVersion": "v1", "kind": "Payment", "namespace": "shop", "name": "buy", "uid": "u"}
            logger.info("kopf says", extra={"k8s_ref": kopf_ref, "settings": object(), "k8s_skip": False})

        await asyncio.create_task(inner(), context=logs.bind("AppInstall", "team-a", "wiki"))

    asyncio.run(main())
    source, kopf_line = lines(out)
    if fmt == "json":
        assert json.loads(source) | {"time": ""} == {
            "time": "",
            "level": "INFO",
            "logger": "kubemart.test.json",
            "message": "about a source",
            "kind": "MarketSource",
            "name": "demo",
        }
        record = json.loads(kopf_line)
        assert (record["kind"], record["namespace"], record["name"]) == ("Payment", "shop", "buy")
        assert not {"settings", "k8s_ref", "k8s_skip"} & set(record), "other libraries' extras stay out"
    else:
        assert "[MarketSource demo] about a source" in source
        assert "[Payment shop/buy] kopf says" in kopf_line


def test_a_traceback_stays_inside_one_json_line() -> None:
    out = io.StringIO()
    handler = logs.handler("json")
    handler.setStream(out)  # type: ignore[attr-defined]
    logger = logging.getLogger("kubemart.test.exc")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("reconcile of %s/%s failed unexpectedly", "n", "a")
    finally:
        logger.removeHandler(handler)
    (line,) = lines(out)
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert "ValueError: boom" in record["exc_info"]


def test_configure_installs_one_handler_on_the_root() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        logs.configure("json")
        logs.configure("json", verbose=True)
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, logs.JsonFormatter)
        assert root.level == logging.DEBUG
        out = io.StringIO()
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        warnings.warn("coroutine was never awaited", RuntimeWarning, stacklevel=1)
        assert json.loads(out.getvalue())["logger"] == "py.warnings", "warnings are JSON lines too"
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved
        root.setLevel(level)
