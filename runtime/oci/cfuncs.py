"""The few ctypes pieces the syscall seam (linux.py) needs, on the `_ctypes` extension alone.

`import ctypes` costs ~1.6 ms in a `python -SI` process (the `types` and `ctypes._endian`
modules, some forty classes, a PyDLL made at import); `_ctypes` ~0.5 ms. `create` forks the
container init only after the intermediate process has loaded the seam, so the difference is
on the critical path of every create. The definitions are those of CPython's
``ctypes/__init__.py``: the same type codes, the same function-pointer flags.
"""

import _ctypes
from _ctypes import byref, get_errno, sizeof

__all__ = ["Library", "byref", "c_char_p", "c_int", "c_long", "c_size_t", "c_uint", "c_uint64", "c_ulong",
           "c_void_p", "char_buffer", "get_errno", "sizeof"]


class c_int(_ctypes._SimpleCData):
    """C int."""

    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    """C unsigned int."""

    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    """C long."""

    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    """C unsigned long."""

    _type_ = "L"


class c_void_p(_ctypes._SimpleCData):
    """C void *."""

    _type_ = "P"


class c_char_p(_ctypes._SimpleCData):
    """C char * (a NUL-terminated bytes object)."""

    _type_ = "z"


class c_char(_ctypes._SimpleCData):
    """C char."""

    _type_ = "c"


# LP64 (x86-64, aarch64: the architectures linux.py knows): long is 64 bits, as ctypes has it.
c_uint64 = c_ulong
c_size_t = c_ulong


def char_buffer(size: int):
    """SIZE zero bytes (ctypes.create_string_buffer(size)); ``.raw`` reads them back."""
    return (c_char * size)()


class Library:
    """The functions of this program and its libraries: ctypes.CDLL(None, use_errno=True).

    With python_api (ctypes.PyDLL) the GIL stays held across each call.
    Functions return a C int unless their ``restype`` is set.
    """

    def __init__(self, python_api: bool = False):
        flags = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        if python_api:
            flags |= _ctypes.FUNCFLAG_PYTHONAPI

        class _Function(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = c_int

        self._function = _Function
        # None: this program, as CDLL(None); typeshed only knows ctypes' own calls.
        self._handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._function((name, self))  # type: ignore[arg-type]  # CFuncPtr reads self._handle
        setattr(self, name, func)
        return func
