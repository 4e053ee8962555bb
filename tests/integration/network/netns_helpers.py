"""Helpers for network tests: namespaces bound to files, commands inside them, a tiny TCP server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

PY = sys.executable


class Netns:
    """A network namespace bound to a file under tmp_path (as the engine does), removed at teardown."""

    def __init__(self, path: str):
        self.path = path
        open(path, "w").close()
        subprocess.run(["unshare", f"--net={path}", "true"], check=True)

    def run(self, cmd: str, timeout: float = 20, **kw) -> subprocess.CompletedProcess:
        """Run a shell command inside the namespace."""
        return subprocess.run(["nsenter", f"--net={self.path}", "sh", "-c", cmd], capture_output=True, text=True,
                              timeout=timeout, **kw)

    def popen(self, argv: list[str]) -> subprocess.Popen:
        """Start a process inside the namespace."""
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def resolve(self, hosts_file: str, cmd: str) -> subprocess.CompletedProcess:
        """Run `cmd` in the netns with `hosts_file` bind-mounted on /etc/hosts (a private mount ns)."""
        inner = f"mount --bind {hosts_file} /etc/hosts && {cmd}"
        return subprocess.run(["nsenter", f"--net={self.path}", "unshare", "-m", "--propagation", "private",
                               "sh", "-c", inner], capture_output=True, text=True, timeout=20)

    def destroy(self) -> None:
        """Unmount and delete the namespace file (the kernel frees the netns and its veth ends)."""
        # -l: a process that still holds the file open (a failed test's child) must not keep it mounted
        subprocess.run(["umount", "-l", self.path], capture_output=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def wait_listening(ns: Netns, port: int, proto: str = "tcp", timeout: float = 10) -> None:
    """Wait until something listens on `port` inside the namespace."""
    flag = "-ltn" if proto == "tcp" else "-lun"
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = ns.run(f"ss -H {flag} 'sport = :{port}'")
        if r.stdout.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {proto}/{port} in {ns.path}")


def tcp_server(ns: Netns, port: int, reply: str) -> subprocess.Popen:
    """A one-shot TCP server in the namespace that answers `reply` plus the peer address."""
    code = (
        "import socket\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('0.0.0.0', {port})); s.listen()\n"
        "while True:\n"
        "    c, a = s.accept()\n"
        f"    c.sendall(({reply!r} + ' ' + a[0] + '\\n').encode()); c.close()\n"
    )
    p = ns.popen([PY, "-c", code])
    wait_listening(ns, port)
    return p


@contextlib.contextmanager
def tcp_serving(ns: Netns, port: int, reply: str) -> Iterator[subprocess.Popen]:
    """``tcp_server`` for the length of a with block; killed and reaped after it."""
    srv = tcp_server(ns, port, reply)
    try:
        yield srv
    finally:
        srv.kill()
        srv.wait()


def have(tool: str) -> bool:
    """True when a host tool exists."""
    return shutil.which(tool) is not None


def run_isolated(script: str, *args: str, timeout: float = 180) -> dict[str, str]:
    """Run a script of this folder as `script ARGS... REPO` in a network and mount namespace of its own.

    Its sysctls and firewall rules exist only there (the host's are never touched) and die with
    it even if it fails. Returns its `key value` output lines as a dict.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    argv = " ".join([PY, os.path.join(here, script), *args, repo])
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
                        f"mount -t sysfs none /sys && exec {argv}"], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)

