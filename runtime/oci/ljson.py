"""JSON without the json package's import cost, for the runtime's start path.

`import json` pulls in re, enum, functools and collections: about 7 ms of CPU per
runtime invocation in a `python -SI` process, more than the rest of `start` or
`state`. The C accelerator `_json` that json itself uses has no such imports, so
this module drives its scanner and encoder directly, and falls back to json where
`_json` is missing (other Python implementations). Output matches json.dumps;
input errors raise ValueError like json.loads.
"""

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]


def _bad_constant(name: str):
    raise ValueError(f"invalid JSON constant {name}")


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_bad_constant)
    memo: dict = {}


_WS = " \t\n\r"

if _json is not None:
    _scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # any object with the attributes
    _encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None,  # type: ignore[arg-type]
                                 ": ", ", ", False, False, False)


def loads(data: str | bytes):
    """Parse one JSON document (str or UTF-8 bytes); ValueError when it is not valid JSON."""
    if isinstance(data, (bytes, bytearray)):
        # Not .decode("utf-8-sig"): that codec is a module to import (~0.15 ms); utf-8 is built in.
        raw = bytes(data)
        data = (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8")
    if _json is None:
        import json

        return json.loads(data)
    start = 0
    while start < len(data) and data[start] in _WS:
        start += 1
    try:
        obj, end = _scan(data, start)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at character {e.value}") from None
    while end < len(data) and data[end] in _WS:
        end += 1
    if end != len(data):
        raise ValueError(f"invalid JSON: extra data at character {end}")
    return obj


def dumps(obj, indent: int | None = None) -> str:
    """Serialize OBJ like json.dumps (ASCII output); INDENT pretty-prints dicts and lists."""
    if _json is None:
        import json

        return json.dumps(obj, indent=indent)
    if indent is None:
        return "".join(_encode(obj, 0))
    return _pretty(obj, indent, 0)


def _pretty(obj, indent: int, level: int) -> str:
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{''.join(_encode(str(k), 0))}: {_pretty(v, indent, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, (list, tuple)) and obj:
        return "[\n" + ",\n".join(pad + _pretty(v, indent, level + 1) for v in obj) + "\n" + end + "]"
    return "".join(_encode(obj, 0))
