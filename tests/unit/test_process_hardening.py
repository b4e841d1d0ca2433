"""`kubemart run` hardens its process: it decodes the deepest objects the API server stores, never crashes."""

from __future__ import annotations

import resource
import subprocess
import sys

PROBE = """
import json, sys, threading
from kubemart.cli import harden_process
print(harden_process())
deep = '{"a":' * 10_000 + '1' + '}' * 10_000  # about the deepest the API server stores
def decode(where):
    try:
        json.loads(deep)
        print(where, "decoded")
    except RecursionError:
        print(where, "RecursionError")
decode("main thread:")
worker = threading.Thread(target=decode, args=("thread:",))
worker.start()
worker.join()
try:
    json.loads('[' * 100_000 + ']' * 100_000)
except RecursionError:
    print("deeper: RecursionError")
"""


def run(stack_hard_limit: int | None = None) -> list[str]:
    def limit() -> None:
        if stack_hard_limit is not None:
            resource.setrlimit(resource.RLIMIT_STACK, (stack_hard_limit, stack_hard_limit))

    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, preexec_fn=limit
    )
    assert out.returncode == 0, f"the process died ({out.returncode}): {out.stderr[-2000:]}"
    return out.stdout.split("\n")[:-1]


def test_objects_as_deep_as_the_api_server_stores_decode_and_deeper_ones_fail_cleanly() -> None:
    assert run() == ["15000", "main thread: decoded", "thread: decoded", "deeper: RecursionError"]


def test_a_small_stack_limit_lowers_the_recursion_limit_instead_of_crashing() -> None:
    # 8 MiB (a common `ulimit -s`, here a hard limit the process cannot raise) holds 2,048 levels safely.
    assert run(stack_hard_limit=8 * 1024 * 1024) == [
        "2048",
        "main thread: RecursionError",
        "thread: RecursionError",
        "deeper: RecursionError",
    ]
