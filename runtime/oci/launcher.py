"""A sealed in-memory launcher that performs the final execve of the container process.

Why (CVE-2019-5736): the runtime's container init is a forked Python process, so
/proc/self/exe points at the host interpreter. If it execve'd the container's
binary directly and that binary were a script starting with ``#!/proc/self/exe``,
the kernel would run the *host* interpreter inside the container, which could then
reopen /proc/<pid>/exe and overwrite it. Instead the init first execs this tiny
static program from a sealed memfd (so /proc/self/exe becomes an unwritable
private copy) and the launcher execs the container binary. A hostile
``#!/proc/self/exe`` then only re-runs the launcher.

The runtime calls it with argv[0] = MARKER + the program's path. When the kernel runs
it as a script's interpreter instead, argv[0] is the ``#!`` path, without the marker,
and it exits 126 at once: otherwise ``#!/proc/self/exe`` would make it exec the script,
which runs it again, forever.

The program is 57 bytes of x86-64 machine code, assembled from::

    mov  rdi, [rsp+8]            ; argv[0]: MARKER + the resolved path of the program
    cmp  byte [rdi], 1           ; MARKER (0x01)?
    jne  2f                      ; no: run as an interpreter, refuse
    inc  rdi                     ; the path after the marker
    lea  rsi, [rsp+16]           ; &argv[1]: the container's argv
    mov  rax, [rsp]              ; argc
    lea  rdx, [rsp+rax*8+16]     ; envp follows argv's NULL
    mov  eax, 59                 ; execve(argv[0], &argv[1], envp)
    syscall
    mov  edi, 127                ; it failed: 127 for ENOENT ...
    cmp  rax, -2
    je   1f
2:  mov  edi, 126                ; ... 126 otherwise (docker's convention)
 1: mov  eax, 231                ; exit_group
    syscall
"""

import fcntl
import os
import struct

MARKER = "\x01"
_CODE_X86_64 = bytes.fromhex(
    "488b7c2408" "803f01" "7523" "48ffc7"
    "488d742410" "488b0424" "488d54c410" "b83b000000" "0f05"
    "bf7f000000" "4883f8fe" "7405" "bf7e000000" "b8e7000000" "0f05"
)
_BASE = 0x400000
_MFD_CLOEXEC = 0x1
_MFD_ALLOW_SEALING = 0x2
_MFD_EXEC = 0x10
_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL | SHRINK | GROW | WRITE


def elf_image() -> bytes | None:
    """The launcher as a static ELF executable for this machine, or None if there is none."""
    if os.uname().machine != "x86_64":
        return None
    code = _CODE_X86_64
    ehdr_size, phdr_size = 64, 56
    size = ehdr_size + phdr_size + len(code)
    entry = _BASE + ehdr_size + phdr_size
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, 0x3E, 1, entry, ehdr_size, 0, 0,
                       ehdr_size, phdr_size, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return ehdr + phdr + code


def sealed_fd() -> int | None:
    """A close-on-exec, sealed memfd holding the launcher (None where no launcher exists)."""
    image = elf_image()
    if image is None:
        return None
    flags = _MFD_CLOEXEC | _MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("virtlab-launcher", flags | _MFD_EXEC)
    except OSError:  # kernels before 6.3 do not know MFD_EXEC
        fd = os.memfd_create("virtlab-launcher", flags)
    try:
        os.write(fd, image)
        os.fchmod(fd, 0o555)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd
