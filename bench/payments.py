"""What the payment bounds cost at their worst (no cluster): `.venv/bin/python bench/payments.py`.

(a) a stranger's webhook: the signature check of a 16 KiB body against 20 sources' secrets, the work
    an unauthenticated request can make the operator do (nothing is parsed, nothing read from the API);
(b) the endpoint itself over HTTP: unauthenticated requests per second, one client;
(c) a gateway's worst reply: 64 KiB of the flattest and the deepest JSON, bounded and validated;
(d) a receipt without a kid checked against 9 keys (the current one and 8 retired).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kubemart.domain import gateway_protocol as protocol  # noqa: E402
from kubemart.domain import receipts, webhooks  # noqa: E402
from kubemart.services.webhook_secrets import WebhookSecrets  # noqa: E402
from kubemart.services.webhook_server import MAX_BODY, WebhookServer  # noqa: E402
from support.gateway import encode_key  # noqa: E402
from support.operator_process import free_port  # noqa: E402


def per_call(fn: Callable[[], object], runs: int) -> float:
    """Median microseconds of `fn` over 5 rounds of `runs` calls."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(runs):
            fn()
        rounds.append((time.perf_counter() - started) / runs * 1e6)
    return statistics.median(rounds)


def main() -> None:
    secrets = WebhookSecrets()
    for i in range(20):
        secrets.set_source(f"source-{i}", f"whsec-{i}".encode())
    body = b"x" * MAX_BODY
    forged = webhooks.signature_header(b"guess", body, int(time.time()))

    def stranger() -> None:
        with contextlib.suppress(webhooks.BadSignature):
            secrets.signers(forged, body, now=time.time())

    rows = [
        ("(a) stranger's 16 KiB webhook, 20 sources' secrets checked", f"{per_call(stranger, 200):.0f} µs")
    ]

    port = free_port()
    loop = asyncio.new_event_loop()
    server = WebhookServer(secrets, lambda keys: None)
    loop.run_until_complete(server.start(port))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    with httpx.Client() as http:
        url = f"http://127.0.0.1:{port}/webhooks/payment"
        started, count = time.perf_counter(), 2000
        for _ in range(count):
            assert http.post(url, content=b'{"session":"cs_1"}').status_code == 401
        rate = count / (time.perf_counter() - started)
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    rows.append(("(b) unauthenticated webhooks over HTTP, one client", f"{rate:.0f} requests/s"))

    flat = b'{"x": [' + b"[]," * 21_000 + b"[]]}"
    deep = b"[" * 32_000 + b"]" * 32_000

    def parse(data: bytes) -> Callable[[], object]:
        def run() -> None:
            with contextlib.suppress(protocol.InvalidMessage):
                protocol.parse(protocol.Session, data)

        return run

    rows.append(
        (
            "(c) 64 KiB gateway reply, an object holding 21,000 empty arrays",
            f"{per_call(parse(flat), 20) / 1000:.2f} ms",
        )
    )
    rows.append(("(c) 64 KiB gateway reply, 32,000 deep", f"{per_call(parse(deep), 20) / 1000:.2f} ms"))

    keys = [Ed25519PrivateKey.generate() for _ in range(9)]
    ring = receipts.keyring([(f"k{i}", encode_key(k, "raw")) for i, k in enumerate(keys)])
    claims = {"source": "s", "app": "a", "developer": None, "buyer": "b", "amount": "1", "currency": "USD"}
    oldest = receipts.sign({**claims, "session": "cs_1", "paidAt": "2026-11-22T00:00:00Z"}, keys[-1])
    rows.append(
        (
            "(d) receipt without kid, signed by the 9th of 9 keys",
            f"{per_call(lambda: receipts.verify(oldest, ring), 200):.0f} µs",
        )
    )

    width = max(len(r[0]) for r in rows)
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
