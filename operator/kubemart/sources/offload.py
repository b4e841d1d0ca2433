"""Heavy work on what catalogs send (reading an index, building and planning thousands of MarketApps),
off the event loop and at most two at a time.

A pool of its own, so that several large or hostile catalogs at once can neither take every thread
of asyncio's default pool (which chart downloads use for their file writes) nor, holding the GIL
in many threads, starve the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kubemart-catalog")


async def offload(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the catalog pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))
