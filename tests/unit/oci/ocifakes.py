"""A recording fake of runtime.oci.linux.Linux: privileged calls are recorded, never made."""

from __future__ import annotations

import os

from runtime.oci import linux


class RecordingLinux(linux.Linux):
    """Records mount/unshare/setns/capset/prctl/...; path resolution (openat2) stays real (no root needed)."""

    def __init__(self, caps: int = (1 << 41) - 1):
        super().__init__()
        self.calls: list[tuple] = []
        self.caps = caps

    def _rec(self, *call):
        self.calls.append(call)

    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [c[0] for c in self.calls]

    def of(self, name: str) -> list[tuple]:
        """The recorded calls of one kind."""
        return [c for c in self.calls if c[0] == name]

    def mount(self, source, target, fstype, flags, data):
        real = os.readlink(target) if target.startswith("/proc/self/fd/") else target
        self._rec("mount", source, real, fstype, flags, data)

    def set_mount_flags(self, fd, flags):
        self._rec("set_mount_flags", os.readlink(f"/proc/self/fd/{fd}"), flags)

    def umount2(self, target, flags=0):
        self._rec("umount2", target, flags)

    def pivot_root(self, new_root, put_old):
        self._rec("pivot_root", new_root, put_old)

    def unshare(self, flags):
        self._rec("unshare", flags)

    def setns(self, fd, nstype=0):
        self._rec("setns", nstype)

    def sethostname(self, name):
        self._rec("sethostname", name)

    def setdomainname(self, name):
        self._rec("setdomainname", name)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0):
        self._rec("prctl", option, arg2, arg3)
        return 0

    def capget(self):
        return self.caps, self.caps, 0

    def capset(self, effective, permitted, inheritable):
        self._rec("capset", effective, permitted, inheritable)

    def execveat(self, fd, argv, env):
        self._rec("execveat", fd, argv, env)

    def bind_tree(self, fd):
        self._rec("bind_tree", os.readlink(f"/proc/self/fd/{fd}"))
        return os.dup(fd)

    def mknod(self, path, mode, device):
        self._rec("mknod", path, mode, device)

    def write_file(self, path, data):
        self._rec("write_file", path, data)
