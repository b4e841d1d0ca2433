"""Hostile catalog inputs from the issue "Trust boundaries", made small: tests and benchmarks share them."""

from __future__ import annotations

import gzip
import zlib

MiB = 1024 * 1024


def gzip_of_zeros(size: int) -> bytes:
    """A gzip stream of `size` zero bytes, compressed a MiB at a time (never holding `size` bytes)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    return b"".join([*(packer.compress(block) for _ in range(size // MiB)), packer.flush()])


def double_gzip(size: int) -> bytes:
    """`size` zero bytes gzipped twice: served as `Content-Encoding: gzip, gzip`, a few KB on the wire."""
    return gzip.compress(gzip_of_zeros(size), 9)


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """An index whose chart's keywords are width**levels "lol"s through nested aliases: ~500 bytes."""
    lines = ["apiVersion: v1", "a: &a [" + ",".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * width) + "]")
    last = chr(ord("a") + levels - 1)
    lines.append(f"entries: {{app: [{{name: app, version: 1.0.0, keywords: *{last}}}]}}")
    return ("\n".join(lines) + "\n").encode()


def flat_index(nodes: int) -> bytes:
    """A valid-looking index of `nodes` tiny distinct strings: as much memory per byte as YAML allows."""
    return b"entries:\n  a:\n  - version: 1.0.0\n    keywords:\n" + b"".join(
        b"    - k%x\n" % i for i in range(nodes)
    )
