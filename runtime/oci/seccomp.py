"""linux.seccomp: build and load a filter through libseccomp (ctypes, loaded only when needed).

pyseccomp takes 15 ms to import; the dozen libseccomp calls needed here are
cheaper to declare directly. Semantics follow runc: unknown syscall names are
skipped, rules whose action equals the default action are skipped, and a rule
whose conditions repeat an argument index becomes one rule per condition (OR).
"""

from __future__ import annotations

import ctypes
import errno
import os

from runtime.oci.errors import SpecError, SyscallError

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACT_NOTIFY = 0x7FC00000

OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": _ATTR_CTL_TSYNC, "SECCOMP_FILTER_FLAG_LOG": _ATTR_CTL_LOG,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _ATTR_CTL_SSB}


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def action(name: str, errno_ret: int | None = None) -> int:
    """The libseccomp action value of an OCI action name."""
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    table = {"SCMP_ACT_KILL": ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
             "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS, "SCMP_ACT_TRAP": ACT_TRAP, "SCMP_ACT_LOG": ACT_LOG,
             "SCMP_ACT_ALLOW": ACT_ALLOW}
    if name not in table:
        raise SpecError(f"invalid config: unsupported seccomp action {name!r}")
    return table[name]


def plan(seccomp: dict) -> dict:
    """Validate linux.seccomp and turn it into {default, arches, flags, rules[(names, action, [args...])]}."""
    default = action(seccomp.get("defaultAction") or "", seccomp.get("defaultErrnoRet"))
    rules = []
    for entry in seccomp.get("syscalls") or []:
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        act = action(entry.get("action") or "", entry.get("errnoRet"))
        args = []
        for a in entry.get("args") or []:
            op = OPS.get(a.get("op"))
            if op is None:
                raise SpecError(f"invalid config: unknown seccomp operator {a.get('op')!r}")
            index = int(a.get("index", 0))
            if not 0 <= index <= 5:
                raise SpecError(f"invalid config: seccomp argument index {index} out of range")
            args.append((index, op, int(a.get("value", 0)), int(a.get("valueTwo", 0))))
        if act == default:
            continue
        rules.append((list(names), act, args))
    flags = []
    for f in seccomp.get("flags") or []:
        if f not in FLAGS:
            raise SpecError(f"invalid config: unsupported seccomp flag {f!r}")
        flags.append(FLAGS[f])
    arches = [a.lower().removeprefix("scmp_arch_") for a in seccomp.get("architectures") or []]
    return {"default": default, "arches": arches, "flags": flags, "rules": rules}


_LIB = None


def _lib():
    """libseccomp, loaded once; must happen on the host root, before pivot_root (never from the image)."""
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        name = find_library("seccomp")
        if not name:
            raise SyscallError("seccomp requested but libseccomp is not installed", errno.ENOSYS) from None
        lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    _LIB = lib
    return lib


class Filter:
    """A filter built in libseccomp (on the host side), loaded later with load()."""

    def __init__(self, p: dict, extra_allow: list[tuple[list, list]] | None = None):
        self.lib = lib = _lib()
        self.ctx = lib.seccomp_init(p["default"])
        if not self.ctx:
            raise SyscallError("seccomp_init failed", errno.EINVAL)
        try:
            self._build(p, extra_allow or [])
        except BaseException:
            self.release()
            raise

    def _build(self, p: dict, extra_allow: list) -> None:
        lib, ctx = self.lib, self.ctx
        _check(lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "seccomp: cannot clear the no_new_privs attribute")
        for attr in p["flags"]:
            _check(lib.seccomp_attr_set(ctx, attr, 1), f"seccomp: cannot set filter flag {attr}")
        for arch in p["arches"]:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if not token:
                continue  # an architecture this libseccomp does not know: runc skips it as well
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno.EEXIST:
                _check(rc, f"seccomp: cannot add architecture {arch}")
        for names, act, args in p["rules"]:
            self._add(names, act, args, strict=True)
        for names, args in extra_allow:
            if p["default"] != ACT_ALLOW:
                self._add(names, ACT_ALLOW, args, strict=False)  # the profile may have its own rule for it

    def _add(self, names: list, act: int, args: list, strict: bool) -> None:
        for name in names:
            nr = self.lib.seccomp_syscall_resolve_name(name.encode())
            if nr == -1:  # __NR_SCMP_ERROR: not a syscall on this architecture
                continue
            indexes = [a[0] for a in args]
            groups = [[a] for a in args] if len(set(indexes)) != len(indexes) else [args]
            for group in groups:
                arr = (_ArgCmp * max(1, len(group)))(*[_ArgCmp(*a) for a in group])
                rc = self.lib.seccomp_rule_add_array(self.ctx, act, nr, len(group), arr)
                if strict:
                    _check(rc, f"seccomp: cannot add rule for {name}")

    def load(self) -> None:
        """Load the filter into the calling thread."""
        _check(self.lib.seccomp_load(self.ctx), "seccomp: cannot load the filter")

    def release(self) -> None:
        """Free the libseccomp context."""
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise SyscallError(f"{what}: {os.strerror(-rc)}", -rc)
