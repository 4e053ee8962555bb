"""Path helpers on the built-in `posix` module, for the runtime's start, delete and state paths.

`import os` (posixpath imports it too) costs ~0.8 ms per runtime command in a `python -SI`
process (`_collections_abc`, `os.environ`), as much as the rest of `start`. The modules
those commands load (cli, commands, container, state, the cgroup helpers) call `posix`
directly, which every interpreter has loaded at startup, and these helpers, which follow
posixpath for str paths. `create`, `run` and `exec` import `os` anyway.
"""

import posix

_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def join(a, *parts) -> str:
    """posixpath.join for str paths: an absolute part restarts the path."""
    path = posix.fspath(a)
    for part in parts:
        b = posix.fspath(part)
        if b.startswith("/"):
            path = b
        elif not path or path.endswith("/"):
            path += b
        else:
            path += "/" + b
    return path


def dirname(p) -> str:
    """posixpath.dirname: everything before the last slash, without trailing slashes (except a root)."""
    p = posix.fspath(p)
    head = p[:p.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def normpath(p) -> str:
    """posixpath.normpath: collapse '//', '.' and 'dir/..' without touching the filesystem."""
    p = posix.fspath(p)
    if not p:
        return "."
    initial = 2 if p.startswith("//") and not p.startswith("///") else 1 if p.startswith("/") else 0
    comps: list[str] = []
    for comp in p.split("/"):
        if comp in ("", "."):
            continue
        if comp != ".." or (not initial and not comps) or (comps and comps[-1] == ".."):
            comps.append(comp)
        elif comps:
            comps.pop()
    return "/" * initial + "/".join(comps) or "."


def abspath(p) -> str:
    """posixpath.abspath: relative to the current directory, normalised."""
    p = posix.fspath(p)
    return normpath(p if p.startswith("/") else join(posix.getcwd(), p))


def _mode(path) -> int:
    try:
        return posix.stat(path).st_mode
    except (OSError, ValueError):
        return 0


def exists(path) -> bool:
    """True when PATH exists (symlinks followed), as os.path.exists."""
    return _mode(path) != 0


def isdir(path) -> bool:
    """True when PATH is a directory (symlinks followed)."""
    return _mode(path) & _S_IFMT == _S_IFDIR


def isfile(path) -> bool:
    """True when PATH is a regular file (symlinks followed)."""
    return _mode(path) & _S_IFMT == _S_IFREG
