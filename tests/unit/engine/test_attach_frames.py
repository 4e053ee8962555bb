import io
import struct

import pytest

from runtime.engine import attach
from runtime.engine.errors import EngineError


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_frames_are_split_by_stream_and_end_with_the_exit_code():
    out, err = io.BytesIO(), io.BytesIO()
    data = frame(1, b"hello ") + frame(2, b"oops") + frame(1, b"world") + frame(3, b"42") + frame(1, b"late")
    rest, code = attach._drain(data, out, err)
    assert (out.getvalue(), err.getvalue(), code) == (b"hello world", b"oops", 42)
    assert rest == frame(1, b"late")


def test_partial_frames_wait_for_more_bytes():
    out, err = io.BytesIO(), io.BytesIO()
    whole = frame(1, b"abcdef")
    rest, code = attach._drain(whole[:5], out, err)
    assert rest == whole[:5] and code is None and out.getvalue() == b""
    rest, code = attach._drain(rest + whole[5:], out, err)
    assert rest == b"" and out.getvalue() == b"abcdef"


@pytest.mark.parametrize("spec,expected", [(None, b"\x10\x11"), ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a,x", b"\x01x")])
def test_detach_keys(spec, expected):
    assert attach.parse_detach_keys(spec) == expected


def test_bad_detach_keys():
    with pytest.raises(EngineError):
        attach.parse_detach_keys("ctrl-pp")
