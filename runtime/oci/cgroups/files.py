"""Reading and writing cgroup control files, with errors that name the file and the value.

A control file must be written with one write(2) call: the kernel parses each write as
one command, so buffered Python writes could split or merge them.
"""

import errno as _errno
import posix  # not os: see runtime.oci.lpath
import sys

from runtime.oci import lpath
from runtime.oci.cgroups.errors import CgroupError


def write(path: str, value: str | int) -> None:
    """Write ``value`` to the control file ``path`` in a single write(2)."""
    data = str(value).encode()
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_TRUNC | posix.O_CLOEXEC)
    except OSError as exc:
        raise _error(f"cannot open {path} to write {str(value)!r}", exc) from exc
    try:
        posix.write(fd, data)
    except OSError as exc:
        raise _error(f"cannot write {str(value)!r} to {path}", exc) from exc
    finally:
        posix.close(fd)


def read(path: str) -> str:
    """The content of a control file, stripped."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise _error(f"cannot read {path}", exc) from exc


def read_int(path: str, max_as: int | None = None) -> int:
    """A control file holding one integer; "max" becomes ``max_as`` (error when None)."""
    text = read(path)
    if text == "max" and max_as is not None:
        return max_as
    try:
        return int(text)
    except ValueError:
        raise CgroupError(f"unexpected content {text!r} in {path}: not an integer") from None


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line, e.g. memory.stat, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def debug(message: str, *args) -> None:
    """Log at debug level to "virtlab.cgroups" if the program uses logging at all.

    Importing logging costs several milliseconds on the runtime's start path; a program
    that never imported it has no handler that would show the message anyway.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("virtlab.cgroups").debug(message, *args)


def exists(path: str) -> bool:
    """True when the control file or directory exists."""
    return lpath.exists(path)


def _error(message: str, exc: OSError) -> CgroupError:
    err = CgroupError(f"{message}: {exc.strerror or exc}")
    err.errno = exc.errno  # type: ignore[attr-defined]
    return err


def is_errno(exc: BaseException, *codes: int) -> bool:
    """True when ``exc`` (or the OSError it wraps) carries one of the errno ``codes``."""
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__, OSError):
        code = exc.__cause__.errno
    return code in codes


ENOENT = _errno.ENOENT
EBUSY = _errno.EBUSY
EINVAL = _errno.EINVAL
EOPNOTSUPP = _errno.EOPNOTSUPP
EEXIST = _errno.EEXIST
ENOTEMPTY = _errno.ENOTEMPTY
EPERM = _errno.EPERM
ENODEV = _errno.ENODEV
EOVERFLOW = _errno.EOVERFLOW
ENOTSUP = _errno.ENOTSUP
