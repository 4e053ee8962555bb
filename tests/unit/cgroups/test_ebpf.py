"""The v2 device filter program, run in a small interpreter of the eBPF subset it uses."""

from __future__ import annotations

import struct

import pytest

from runtime.oci.cgroups import ebpf
from runtime.oci.cgroups.resources import device_rules

R, W, M = ebpf.ACC_READ, ebpf.ACC_WRITE, ebpf.ACC_MKNOD


def run(prog: bytes, dev_type: str, major: int, minor: int, access: int) -> int:
    """Execute ``prog`` for one device access; returns r0 (1 allow, 0 deny)."""
    ctx = struct.pack("<III", (access << 16) | (ebpf.DEV_BLOCK if dev_type == "b" else ebpf.DEV_CHAR), major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    for _ in range(10000):
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == 0x61:
            assert src == 1, "only the context is read"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xB4:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0x55:
            pc += off if regs[dst] != (imm & 0xFFFFFFFF) else 0
        elif code == 0x5D:
            pc += off if regs[dst] != regs[src] else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not terminate")


DOCKER_LIKE = device_rules([
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
])


@pytest.mark.parametrize(
    "dev, access, allowed",
    [
        (("c", 1, 3), R | W, 1),
        (("c", 1, 3), M, 1),
        (("c", 1, 5), R, 1),
        (("c", 1, 5), M, 0),  # mknod not granted for /dev/zero
        (("c", 136, 7), R | W, 1),  # any pty minor
        (("c", 10, 229), R, 0),
        (("b", 8, 0), R, 1),
        (("b", 8, 0), W, 0),
        (("b", 1, 3), R, 0),  # same numbers, other type
        (("c", 4, 1), R, 0),  # default deny
    ],
)
def test_program_decides_like_the_rules(dev, access, allowed):
    assert run(ebpf.program(DOCKER_LIKE), *dev, access) == allowed


def test_later_rules_win_and_a_resets():
    rules = device_rules([
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "access": "rwm"},  # allow all: resets what came before
        {"allow": False, "type": "c", "major": 1, "access": "w"},
        {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rw"},
    ])
    prog = ebpf.program(rules)
    assert run(prog, "c", 4, 1, R | W) == 1
    assert run(prog, "c", 1, 3, W) == 0
    assert run(prog, "c", 1, 3, R) == 1
    assert run(prog, "c", 1, 9, W) == 1


def test_empty_rules_deny_everything():
    assert run(ebpf.program([]), "c", 1, 3, R) == 0
