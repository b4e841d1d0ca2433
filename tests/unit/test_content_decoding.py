"""Content-Encoding decoded with a bound on what comes out, whatever the compression ratio."""

from __future__ import annotations

import gzip
import zlib

import pytest

from kubemart.sources.helm_http.decoding import STEP, BoundedDecoder, EncodingError

DATA = b"apiVersion: v1\nentries: {}\n" * 2000


def decode(header: str | None, body: bytes, *, chunk: int = 1 << 20) -> bytes:
    decoder = BoundedDecoder(header)
    out = [piece for i in range(0, len(body), chunk) for piece in decoder.feed(body[i : i + chunk])]
    decoder.finish()
    return b"".join(out)


@pytest.mark.parametrize(
    ("header", "body"),
    [
        pytest.param(None, DATA, id="no header"),
        pytest.param("identity", DATA, id="identity"),
        pytest.param("gzip", gzip.compress(DATA), id="gzip"),
        pytest.param("GZip", gzip.compress(DATA), id="names are case-insensitive"),
        pytest.param("deflate", zlib.compress(DATA), id="zlib-wrapped deflate"),
        pytest.param("deflate", zlib.compress(DATA)[2:-4], id="raw deflate"),
        pytest.param("deflate, gzip", gzip.compress(zlib.compress(DATA)), id="two layers, in order"),
        pytest.param("gzip, identity", gzip.compress(DATA), id="identity ignored"),
    ],
)
def test_decodes(header: str | None, body: bytes) -> None:
    assert decode(header, body) == DATA


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunk_boundaries_do_not_matter(chunk: int) -> None:
    assert decode("gzip, gzip", gzip.compress(gzip.compress(DATA)), chunk=chunk) == DATA


def test_each_piece_is_at_most_one_step_however_much_a_chunk_inflates() -> None:
    zeros = gzip.compress(bytes(50 * STEP), 9)
    assert len(zeros) < STEP
    decoder = BoundedDecoder("gzip")
    pieces = decoder.feed(zeros)
    first = next(pieces)
    assert len(first) <= STEP, "inflating stops at a step until the consumer asks for more"
    assert all(len(p) <= STEP for p in pieces)


def test_a_consumer_that_stops_early_never_inflates_the_rest() -> None:
    bomb = gzip.compress(gzip.compress(bytes(64 * 1024 * 1024), 9), 9)
    decoder = BoundedDecoder("gzip, gzip")
    seen = 0
    for piece in decoder.feed(bomb):
        seen += len(piece)
        if seen > 4 * STEP:
            break
    assert seen <= 5 * STEP


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("br", "br, which was not asked for"),
        ("gzip, compress", "compress, which was not asked for"),
        ("gzip, gzip, gzip", "stacked 3 content encodings"),
    ],
)
def test_refused_headers(header: str, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        BoundedDecoder(header)


def test_a_truncated_stream_is_an_error_at_the_end() -> None:
    decoder = BoundedDecoder("gzip")
    b"".join(decoder.feed(gzip.compress(DATA)[:-20]))
    with pytest.raises(EncodingError, match="cut short"):
        decoder.finish()


def test_garbage_is_an_error() -> None:
    with pytest.raises(EncodingError, match="not valid gzip data"):
        b"".join(BoundedDecoder("gzip").feed(b"this is not gzip"))
