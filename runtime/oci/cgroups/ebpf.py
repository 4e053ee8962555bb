"""Device rules for cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices.allow file. The kernel instead runs a BPF program attached to
the cgroup directory for every open/mknod of a device node; it returns 1 to allow, 0 to
deny. ``program`` compiles OCI rules into such a program (the same shape runc emits:
the last matching rule wins, then the default), and ``set_device_rules`` loads it with
bpf(2) through ctypes and attaches it, replacing the programs attached before.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported
from runtime.oci.cgroups.resources import DeviceRule

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 5, 8, 9, 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128

# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
# access_type = (access << 16) | type
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# Opcodes (linux/bpf.h, linux/bpf_common.h).
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str) -> int:
    return (ACC_READ if "r" in access else 0) | (ACC_WRITE if "w" in access else 0) | (ACC_MKNOD if "m" in access else 0)


def effective_rules(rules: list[DeviceRule]) -> tuple[bool, list[DeviceRule]]:
    """(default allow?, rules after the last type-"a" rule), as the v1 kernel would see them."""
    default_allow = False
    kept: list[DeviceRule] = []
    for rule in rules:
        if rule.is_wildcard_all:
            default_allow = rule.allow
            kept = []
        else:
            kept.append(rule)
    return default_allow, kept


def program(rules: list[DeviceRule]) -> bytes:
    """The eBPF instructions enforcing ``rules`` (OCI order: later rules override earlier ones)."""
    default_allow, kept = effective_rules(rules)
    out = [
        _insn(_LDX_W, dst=2, src=1, off=0),  # r2 = access_type
        _insn(_AND32_K, dst=2, imm=0xFFFF),  # r2 = device type
        _insn(_LDX_W, dst=3, src=1, off=0),
        _insn(_RSH32_K, dst=3, imm=16),  # r3 = requested access bits
        _insn(_LDX_W, dst=4, src=1, off=4),  # r4 = major
        _insn(_LDX_W, dst=5, src=1, off=8),  # r5 = minor
    ]
    for rule in reversed(kept):
        block: list[tuple] = []  # (code, dst, src, imm, jumps_to_next)
        block.append((_JNE_K, 2, 0, DEV_BLOCK if rule.type == "b" else DEV_CHAR, True))
        bits = _access_bits(rule.access)
        if bits != ACC_READ | ACC_WRITE | ACC_MKNOD:
            # allowed only when every requested bit is in the rule: (r3 & bits) == r3
            block.append((_MOV32_X, 1, 3, 0, False))
            block.append((_AND32_K, 1, 0, bits, False))
            block.append((_JNE_X, 1, 3, 0, True))
        if rule.major is not None:
            block.append((_JNE_K, 4, 0, rule.major, True))
        if rule.minor is not None:
            block.append((_JNE_K, 5, 0, rule.minor, True))
        block.append((_MOV32_K, 0, 0, 1 if rule.allow else 0, False))
        block.append((_EXIT, 0, 0, 0, False))
        n = len(block)
        for i, (code, dst, src, imm, jumps) in enumerate(block):
            out.append(_insn(code, dst=dst, src=src, off=(n - i - 1) if jumps else 0, imm=imm))
    out.append(_insn(_MOV32_K, dst=0, imm=1 if default_allow else 0))
    out.append(_insn(_EXIT))
    return b"".join(out)


# ---------------------------------------------------------------- bpf(2)


_libc = None


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    global _libc
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise CgroupUnsupported(f"device rules on cgroup v2: bpf(2) syscall number unknown for {platform.machine()}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(_ATTR_SIZE))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _attr(*fields: tuple[int, str, int]) -> ctypes.Array:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, buf, offset, value)
    return buf


def load(insns: bytes) -> int:
    """Load a cgroup device program; returns its fd. The verifier log is in the error."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)

    def attempt(log_level: int) -> int:
        attr = _attr(
            (0, "<I", BPF_PROG_TYPE_CGROUP_DEVICE),
            (4, "<I", len(insns) // 8),
            (8, "<Q", ctypes.addressof(code)),
            (16, "<Q", ctypes.addressof(license_)),
            (24, "<I", log_level),
            (28, "<I", len(log) if log_level else 0),
            (32, "<Q", ctypes.addressof(log) if log_level else 0),
        )
        return _bpf(BPF_PROG_LOAD, attr)

    try:
        return attempt(0)
    except OSError as exc:
        if exc.errno in (1, 38):  # EPERM, ENOSYS
            raise CgroupUnsupported(f"cannot load the device eBPF program: {exc.strerror}") from exc
        try:
            return attempt(1)
        except OSError as exc2:
            detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
            raise CgroupError(f"cannot load the device eBPF program: {exc2.strerror}: {' | '.join(detail)}") from exc2


def query(cgroup_fd: int) -> list[int]:
    """IDs of the device programs attached to the cgroup."""
    room = 64
    while True:
        ids = (ctypes.c_uint32 * room)()
        attr = _attr((0, "<I", cgroup_fd), (4, "<I", BPF_CGROUP_DEVICE), (16, "<Q", ctypes.addressof(ids)),
                     (24, "<I", room))
        try:
            _bpf(BPF_PROG_QUERY, attr)
        except OSError as exc:
            count = struct.unpack_from("<I", attr, 24)[0]
            if exc.errno == 28 and count > room:  # ENOSPC: the kernel says how many there are
                room = count
                continue
            raise
        count = struct.unpack_from("<I", attr, 24)[0]
        return list(ids[:count])


def set_device_rules(cgroup_dir: str, rules: list[DeviceRule], replace: bool = True) -> None:
    """Attach a program enforcing ``rules`` to ``cgroup_dir``; detach the previous ones when ``replace``.

    The new program is attached before the old ones go (BPF_F_ALLOW_MULTI), so there is
    no moment without a filter.
    """
    prog_fd = load(program(rules))
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(prog_fd)
        raise CgroupError(f"cannot open cgroup {cgroup_dir}: {exc.strerror}") from exc
    try:
        old = query(dir_fd) if replace else []
        try:
            _bpf(BPF_PROG_ATTACH, _attr((0, "<I", dir_fd), (4, "<I", prog_fd), (8, "<I", BPF_CGROUP_DEVICE),
                                        (12, "<I", BPF_F_ALLOW_MULTI)))
        except OSError as exc:
            raise CgroupError(f"cannot attach the device eBPF program to {cgroup_dir}: {exc.strerror}") from exc
        for prog_id in old:
            try:
                old_fd = _bpf(BPF_PROG_GET_FD_BY_ID, _attr((0, "<I", prog_id)))
            except OSError:
                continue  # already gone
            try:
                _bpf(BPF_PROG_DETACH, _attr((0, "<I", dir_fd), (4, "<I", old_fd), (8, "<I", BPF_CGROUP_DEVICE)))
            except OSError as exc:
                raise CgroupError(f"cannot detach the old device program {prog_id} from {cgroup_dir}: {exc.strerror}") from exc
            finally:
                os.close(old_fd)
    except OSError as exc:
        raise CgroupError(f"cannot query the device programs of {cgroup_dir}: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
        os.close(prog_fd)
