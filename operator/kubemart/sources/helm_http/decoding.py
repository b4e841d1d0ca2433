"""Content-Encoding decoded by us, with a bound on what comes out (pure: no I/O).

httpx decodes a response chunk by chunk but without a bound on a chunk's output: a 2 KB body sent
as `Content-Encoding: gzip, gzip` inflates to gigabytes before any size check can see it. Here each
layer inflates at most `STEP` bytes at a time (zlib's `max_length`) and hands them on at once, so
memory stays at a few steps per layer whatever the ratio, and the caller counts decoded bytes as they
come. Encodings we did not ask for, and stacks deeper than two, are refused.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

ACCEPT_ENCODING = "gzip, deflate"
"""What we ask servers for: the encodings zlib decodes."""
MAX_LAYERS = 2
"""Stacked encodings accepted; a normal server sends one."""
STEP = 64 * 1024
"""Most bytes one layer inflates at a time."""

_GZIP = ("gzip", "x-gzip")
_DEFLATE = ("deflate",)


class EncodingError(ValueError):
    """The body's encoding is refused or broken; the message says which and what to do."""


class _Layer:
    """One encoding's inflater; gzip members may follow each other (RFC 1952 allows it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._raw_fallback = name in _DEFLATE
        self._inflater = self._new()
        self._started = False

    def _new(self) -> zlib._Decompress:
        # 16+MAX_WBITS: a gzip header and trailer; MAX_WBITS: zlib-wrapped deflate (RFC 9110).
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self.name in _GZIP else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            before = len(pending)
            try:
                out = self._inflater.decompress(pending, STEP)
            except zlib.error as exc:
                if self._raw_fallback and not self._started:
                    # Some servers send raw deflate without the zlib wrapper; browsers accept both.
                    self._raw_fallback = False
                    self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise EncodingError(f"the body is not valid {self.name} data ({exc})") from None
            self._started = True
            pending = self._inflater.unconsumed_tail
            if out:
                yield out
            if self._inflater.eof:
                rest = self._inflater.unused_data
                if not rest or self.name not in _GZIP:
                    if rest.strip(b"\0"):
                        raise EncodingError(f"the body has data after the end of its {self.name} stream")
                    return
                self._inflater = self._new()  # the next gzip member
                pending = rest
                continue
            if not out and (not pending or len(pending) == before):
                return  # all consumed, or no progress possible until more input comes

    def finish(self) -> None:
        if self._started and not self._inflater.eof:
            raise EncodingError(f"the body's {self.name} stream is cut short")


class BoundedDecoder:
    """Decodes a body encoded with `Content-Encoding: <header>`, one received chunk at a time."""

    def __init__(self, header: str | None) -> None:
        names = [n.strip().lower() for n in (header or "").split(",") if n.strip()]
        names = [n for n in names if n != "identity"]
        unknown = sorted({n for n in names if n not in _GZIP + _DEFLATE})
        if unknown:
            raise EncodingError(
                f"the server sent Content-Encoding {', '.join(unknown)[:60]}, which was not asked for "
                f"(we accept {ACCEPT_ENCODING}); fix the server's compression settings"
            )
        if len(names) > MAX_LAYERS:
            raise EncodingError(
                f"the server stacked {len(names)} content encodings; at most {MAX_LAYERS} are accepted, "
                "so fix the server's compression settings"
            )
        # Applied in the order listed, so decoded last-first.
        self._layers = [_Layer(n) for n in reversed(names)]

    @property
    def identity(self) -> bool:
        return not self._layers

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of `data`, in pieces of at most STEP bytes."""
        return self._through(0, data)

    def _through(self, depth: int, data: bytes) -> Iterator[bytes]:
        if depth == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[depth].feed(data):
            yield from self._through(depth + 1, piece)

    def finish(self) -> None:
        """Raises EncodingError when the body ended inside a compressed stream."""
        for layer in self._layers:
            layer.finish()
