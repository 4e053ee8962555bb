"""Shared tools of the reliability tier: the real CLI, kills at chosen moments, and the checks after a fault.

Every test here drives `virtlab --root <tmp>` as a user would, hurts it (SIGKILL of the CLI,
the monitor, the container's init, QEMU or libvirtd; a full disk; a registry that dies), then
asks three questions:

1. Is the image store consistent?  `check_store` reads every index entry through the
   store's own API (which verifies manifest and config digests), re-hashes every blob on
   disk against its name, and looks for half-written snapshots.
2. Do `ps -a` and `vm ps` tell the truth?  `check_ps_truth` compares each listed state with
   the host: a "running" container has a live init, an exited one has no process left in
   its cgroups.
3. Can the ordinary commands clean up?  `cleanup_with_cli` runs `rm -f`, `vm rm` and
   `image prune -a -f`, then checks the store holds no container, VM, or staging leftovers.
   The leak check of tests/conftest.py then checks the host (mounts, cgroups, netns, links,
   firewall rules, domains, QEMU, temp files).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VIRTLAB = str(Path(sys.executable).with_name("virtlab"))
REGISTRY_BIN = "/usr/bin/docker-registry"
CGROUP_ROOT = Path("/sys/fs/cgroup")


# ---------------------------------------------------------------- the real CLI


def vl(root: Path, *args: str, check: bool = True, input: bytes | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess:
    """`virtlab --root ROOT ARGS...`; with `check`, fail the test on a non-zero exit, showing stderr."""
    r = subprocess.run([VIRTLAB, "--root", str(root), *args], input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"virtlab {' '.join(args)} exited {r.returncode}:\n{r.stdout.decode()}\n"
                             f"{r.stderr.decode()}")
    return r


def spawn(root: Path, *args: str) -> subprocess.Popen:
    """Start `virtlab --root ROOT ARGS...` without waiting (stdout and stderr captured)."""
    return subprocess.Popen([VIRTLAB, "--root", str(root), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 60) -> bool:
    """SIGKILL the CLI process `proc` (only it) as soon as `ready()` is true.

    Returns True if it was killed while still running, False if it had finished first.
    The poll is tight (sub-millisecond) so a short step is hit between its on-disk traces.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return False
        try:
            hit = ready()
        except OSError:
            hit = False
        if hit:
            return kill_now(proc)
        time.sleep(0.0005)
    kill_now(proc)
    raise AssertionError("the step's trace never appeared")


def kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `proc` after `delay` seconds; True if it was still running."""
    try:
        proc.wait(timeout=delay)
        proc.communicate()
        return False
    except subprocess.TimeoutExpired:
        return kill_now(proc)


def communicate_or_fail(proc: subprocess.Popen, hang: str, timeout: float = 30) -> tuple[bytes, bytes]:
    """PROC's output once it ends; if it does not within TIMEOUT, kill it and fail with HANG."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_now(proc)
        pytest.fail(hang)


def kill_now(proc: subprocess.Popen) -> bool:
    """SIGKILL `proc` by its pid and reap it; True if it was still running."""
    alive = proc.poll() is None
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return alive


def glob_any(d: Path, pattern: str) -> bool:
    """True if something matching `pattern` exists in `d`."""
    try:
        return any(d.glob(pattern))
    except OSError:
        return False


# ---------------------------------------------------------------- host facts


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def cgroup_procs(cid: str) -> list[int]:
    """Pids in any cgroup of container `cid` (every v1 controller and the unified tree)."""
    pids: set[int] = set()
    for top in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
        for base in (top, top / "virtlab"):
            f = base / f"virtlab-{cid}" / "cgroup.procs"
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in f.read_text().split()}
    return sorted(p for p in pids if pid_alive(p))


def monitor_pid(root: Path, cid: str) -> int:
    """The pid of the container's vl-monitor (it writes it into monitor.lock)."""
    return int((root / "containers" / cid / "monitor.lock").read_text().split()[0])


# ---------------------------------------------------------------- store checks


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_store(root: Path, after_gc: bool = False) -> None:
    """Assert the image store is consistent: every ref resolves, every blob matches its digest.

    Uses the store's own API (load_image verifies manifest and config digests; resolve
    parses every ref), then hashes every blob file, and checks each reachable layer is
    present. A blob whose content does not match its name is corruption, whatever wrote it.
    A writer killed mid-write may leave a dot-named temporary file in blobs/ (never read as a
    blob); GC must sweep it, so `after_gc` flags any left.
    """
    from runtime.image.store import ImageStore

    path = root / "image"
    if not path.exists():
        return
    store = ImageStore(path)
    problems: list[str] = []
    index = json.loads((path / "index.json").read_bytes()) if (path / "index.json").exists() else {}
    for entry in index.get("manifests", []):
        d = entry.get("digest", "?")
        try:
            img = store.load_image(d)
        except Exception as exc:  # noqa: BLE001 - any failure here is the finding
            problems.append(f"index entry {d} does not load: {exc}")
            continue
        ref = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if ref:
            try:
                if store.resolve(ref).digest != d:
                    problems.append(f"ref {ref} resolves to another manifest than its index entry {d}")
            except Exception as exc:  # noqa: BLE001
                problems.append(f"ref {ref} does not resolve: {exc}")
        for layer in img.layers:
            p = store.blob_path(layer.digest)
            if not p.is_file():
                problems.append(f"layer {layer.digest} of {d} is missing")
            elif p.stat().st_size != layer.size:
                problems.append(f"layer {layer.digest} of {d} has {p.stat().st_size} bytes, manifest says {layer.size}")
    if store.blob_dir.is_dir():
        for name in os.listdir(store.blob_dir):
            p = store.blob_dir / name
            if name.startswith(".") and name.endswith(".tmp"):
                if after_gc:
                    problems.append(f"temporary file blobs/sha256/{name} survived GC")
                continue
            if not p.is_file():
                problems.append(f"blobs/sha256/{name} is not a regular file")
            elif _sha256_file(p) != name:
                problems.append(f"blob {name} does not match its digest (a partial or corrupt blob kept as valid)")
    if store.snap_dir.is_dir():
        for name in os.listdir(store.snap_dir):
            meta = store.snap_dir / name / "meta.json"
            if meta.is_file():
                try:
                    json.loads(meta.read_bytes())
                except ValueError:
                    problems.append(f"snapshot {name} has a corrupt meta.json")
    assert not problems, "image store inconsistent:\n  " + "\n  ".join(problems)


def list_containers(root: Path) -> list[dict]:
    """`ps -a --format json`, one dict per container."""
    r = vl(root, "ps", "-a", "--no-trunc", "--format", "json")
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


def check_ps_truth(root: Path, settle: float = 15.0) -> list[dict]:
    """Assert `ps -a` matches the host: running ⇒ a live init; exited/created ⇒ no process in its cgroups.

    A container whose monitor died may keep running unmonitored (that is true), but once its
    init is gone, ps must stop saying Up within `settle` seconds.
    """
    deadline = time.monotonic() + settle
    while True:
        rows = list_containers(root)
        wrong = []
        for row in rows:
            cid = row["ID"]
            info = json.loads(vl(root, "inspect", cid).stdout)[0]
            state = info["State"]
            if state["Status"] in ("running", "paused", "restarting"):
                if not (state["Pid"] and pid_alive(state["Pid"])):
                    wrong.append(f"{cid[:12]} shown {state['Status']} but its init {state['Pid']} is gone")
                if not row["Status"].startswith(("Up", "Restarting")):
                    wrong.append(f"{cid[:12]} is {state['Status']} but ps says {row['Status']!r}")
            else:
                left = cgroup_procs(info["Id"])
                if left:
                    wrong.append(f"{cid[:12]} shown {state['Status']} but pids {left} still run in its cgroup")
                if row["Status"].startswith("Up"):
                    wrong.append(f"{cid[:12]} is {state['Status']} but ps says {row['Status']!r}")
        if not wrong:
            return rows
        if time.monotonic() >= deadline:
            raise AssertionError("ps -a does not tell the truth:\n  " + "\n  ".join(wrong))
        time.sleep(0.3)


def engine_scratch(root: Path) -> list[str]:
    """Files left in the engine's scratch folder (containers/.tmp: commit writes its layer tar there)."""
    d = root / "containers" / ".tmp"
    return sorted(os.listdir(d)) if d.is_dir() else []


def cleanup_with_cli(root: Path, vms: bool = False, all_images: bool = False) -> None:
    """Remove everything with ordinary commands, asserting each works, then check nothing is left in the store.

    `all_images` prunes every image (busybox too), else only dangling ones.
    """
    ids = vl(root, "ps", "-aq", "--no-trunc").stdout.decode().split()
    if ids:
        vl(root, "rm", "-f", *ids)
    if vms:
        names = vl(root, "vm", "ps", "-a", "-q").stdout.decode().split()
        if names:
            vl(root, "vm", "rm", "-f", *names)
        assert vl(root, "vm", "ps", "-a", "-q").stdout.decode().split() == []
    vl(root, "image", "prune", *(["-a"] if all_images else []), "-f")
    assert list_containers(root) == []
    cdir = root / "containers"
    if cdir.is_dir():
        left = sorted(n for n in os.listdir(cdir) if n not in (".names", ".tmp"))
        assert left == [], f"container directories without a container left in the store: {left}"
        names = sorted(os.listdir(cdir / ".names")) if (cdir / ".names").is_dir() else []
        assert names == [], f"names still reserved after every container was removed: {names}"
    st = root / "image" / "staging"
    if st.is_dir():
        assert sorted(n for n in os.listdir(st) if n != "partial") == [], "staging work left after prune"
    check_store(root, after_gc=True)


def _release_host_objects(root: Path) -> None:
    """Remove what a failed test can leave after `rm -f`: this store's network objects, and the netns and
    cgroups of every container ID the store still mentions."""
    ids = set()
    for d in (root / "containers", root / "network" / "endpoints", root / "runtime"):
        if d.is_dir():
            ids |= {n for n in os.listdir(d) if len(n) == 64}
    if (root / "network").is_dir():
        with contextlib.suppress(Exception):
            from runtime.network import NetworkManager

            NetworkManager(root / "network").teardown()
    for cid in ids:
        release_container_objects(cid)


def release_container_objects(cid: str) -> None:
    """Delete the netns and cgroups of container `cid` (only used where an engine bug left them)."""
    for ns in (f"vl-{cid[:12]}", f"vl-{cid}"):
        if os.path.exists(f"/run/netns/{ns}"):
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)
    for _ in range(50):  # a cgroup with a live process cannot go: kill them (they are this test's) first
        pids = cgroup_procs(cid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for top in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
        cg = top / f"virtlab-{cid}"
        if cg.is_dir():
            for sub in sorted(cg.rglob("*"), reverse=True):
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            with contextlib.suppress(OSError):
                cg.rmdir()


def holders_of(path: Path) -> list[int]:
    """Pids of processes that have `path` open (a container lock kept by a stray child, for instance)."""
    out = []
    target = str(path)
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        out.append(int(pid))
                        break
    return out


def force_cleanup(root: Path) -> None:
    """Teardown of last resort (the test may have failed half-way): remove every container and VM.

    The processes this test's containers left (their cgroups' pids, and any process holding
    a container's lock, which would make `rm -f` wait forever) are killed first by pid; then
    `rm -f` runs in a subprocess with a timeout so a hang cannot stall the session.
    """
    cdir = root / "containers"
    if cdir.is_dir():
        for d in cdir.iterdir():
            if d.name == ".names":
                continue
            for pid in cgroup_procs(d.name) + holders_of(d / "lock"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        ids = [d.name for d in cdir.iterdir() if (d / "record.json").exists()]
        if ids:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run([VIRTLAB, "--root", str(root), "rm", "-f", "-v", *ids], capture_output=True,
                               timeout=120)
        # a half-created container has a directory but no record: clear its mounts so the tree can go
        for d in (root / "containers").iterdir():
            merged = d / "merged"
            if merged.is_dir() and os.path.ismount(merged):
                subprocess.run(["umount", "-l", str(merged)], check=False)
    _release_host_objects(root)
    if (root / "vm").is_dir():
        with contextlib.suppress(Exception):
            from vmdriver.driver import VmDriver

            drv = VmDriver(root)
            for v in drv.list(all=True):
                with contextlib.suppress(Exception):
                    drv.remove(v.name)
            drv.close()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4]
        if mp.startswith(str(root) + "/"):
            subprocess.run(["umount", "-l", mp], check=False)


# ---------------------------------------------------------------- fixtures


def build_busybox(root: Path) -> None:
    """The busybox image, built offline from the host's busybox-static, into the store at `root`."""
    from runtime.image.build import build_busybox as _build
    from runtime.image.store import ImageStore

    _build(ImageStore(root / "image"), ref="busybox:latest")


@pytest.fixture
def root(tmp_path: Path):
    """A fresh store root with the busybox image; every container and VM in it is removed afterwards."""
    r = tmp_path / "root"
    r.mkdir()
    build_busybox(r)
    yield r
    force_cleanup(r)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """Mount a small tmpfs (size given as the first call's argument); unmounted in teardown."""
    mounted: list[Path] = []

    def make(size: str = "8m", name: str = "small") -> Path:
        d = tmp_path / name
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0711", "tmpfs", str(d)], check=True)
        mounted.append(d)
        return d

    yield make
    for d in reversed(mounted):
        force_cleanup(d / "root")
        subprocess.run(["umount", str(d)], check=False)
        if os.path.ismount(d):
            subprocess.run(["umount", "-l", str(d)], check=False)


# ---------------------------------------------------------------- a registry on loopback


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Registry:
    """Debian's docker-registry on a loopback port, with storage in `data`; restartable on the same port."""

    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        """host:port, as it goes in image names."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart after a kill) on the same port and storage."""
        if not self.port:
            self.port = free_port()
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yml"
        cfg.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {self.workdir / 'data'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
""")
        with open(self.workdir / "registry.log", "ab") as log:
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL the registry (a crash, not a shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def stop(self) -> None:
        """Stop it for good."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A plain-HTTP registry on 127.0.0.1 for the session (higher scope: set up before each test's leak snapshot)."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("requires docker-registry (Debian package docker-registry)")
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.start()
    yield reg
    reg.stop()


@dataclass
class CuttingProxy:
    """A TCP proxy on loopback that forwards to `target` and can cut connections mid-stream.

    `cut_down_after` / `cut_up_after`: bytes registry->client / client->registry after which
    the connection is reset (None: never). `requests` records each request line and whether it
    asked for a Range, so a test can see a resumed download.
    """

    target: int
    cut_down_after: int | None = None
    cut_up_after: int | None = None
    cuts_left: int = 1 << 30
    port: int = 0
    requests: list[str] = field(default_factory=list)
    cuts: int = 0
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        """host:port of the proxy."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and serve in a daemon thread."""
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        """Stop accepting."""
        self._stop.set()
        if self._sock:
            self._sock.close()

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left <= 0:
                return False
            self.cuts_left -= 1
            self.cuts += 1
            return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()  # type: ignore[union-attr]
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        done = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, limit: int | None, upward: bool) -> None:
            sent = 0
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    if upward:
                        for line in data.split(b"\r\n"):
                            if line[:8] in (b"GET /v2/", b"HEAD /v2", b"PUT /v2/", b"POST /v2", b"PATCH /v"):
                                self.requests.append(line.decode(errors="replace"))
                            if line.lower().startswith(b"range:"):
                                self.requests.append(line.decode(errors="replace"))
                    if limit is not None and sent + len(data) > limit and self._take_cut():
                        dst.sendall(data[: max(0, limit - sent)])
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                done.set()
                # shutdown, not only close: the other pump thread is blocked in recv on these sockets,
                # and a plain close would not end the connection until that recv returns
                for s in (client, up):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        s.close()

        threading.Thread(target=pump, args=(up, client, self.cut_down_after, False), daemon=True).start()
        pump(client, up, self.cut_up_after, True)


@pytest.fixture
def proxy(registry):
    """A cutting proxy in front of the session registry (configure it, then call .start())."""
    made: list[CuttingProxy] = []

    def make(**kw) -> CuttingProxy:
        p = CuttingProxy(target=registry.port, **kw)
        p.start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# ---------------------------------------------------------------- VMs


def _vm_reason() -> str | None:
    if os.geteuid() != 0:
        return "requires root"
    if not shutil.which("qemu-system-x86_64"):
        return "requires qemu-system-x86_64"
    if not Path("/var/run/libvirt/libvirt-sock").exists():
        return "requires a running libvirtd"
    return None


@pytest.fixture(scope="session")
def vm_store():
    """A store for VM tests, prepared once (busybox, kernel, initramfs, base disk).

    QEMU runs as libvirt-qemu and must traverse the folders above its disks, so the store is a
    0711 folder in /var/tmp (pytest's tmp tree is 0700). Session scope: made before each test's
    leak snapshot and removed, with every VM in it, at the end.
    """
    reason = _vm_reason()
    if reason:
        pytest.skip(reason)
    r = Path(tempfile.mkdtemp(prefix="virtlab-reltest-", dir="/var/tmp"))
    os.chmod(r, 0o711)
    try:
        build_busybox(r)
        vl(r, "vm", "prepare", "busybox", timeout=600)
        yield r
    finally:
        force_cleanup(r)
        shutil.rmtree(r, ignore_errors=True)


def libvirtd_pids() -> list[int]:
    """Pids of live libvirtd processes (a killed one stays a zombie until PID 1 reaps it: not counted)."""
    out = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if pid_alive(int(p))]


def _libvirt_answers() -> bool:
    r = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, timeout=30)
    return r.returncode == 0


def restart_libvirtd() -> None:
    """Start libvirtd the way scripts/setup.sh does (`libvirtd -d`) and wait for its socket to answer.

    Other people's VMs depend on it too, so it is started again until it answers.
    """
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not libvirtd_pids():
            subprocess.run(["libvirtd", "-d"], check=False)
        for _ in range(20):
            if _libvirt_answers():
                return
            time.sleep(0.5)
    raise AssertionError("libvirtd did not come back")


def qemu_pids(domain: str) -> list[int]:
    """Pids of the QEMU process of libvirt domain `domain`."""
    out = subprocess.run(["pgrep", "-f", f"guest={domain},"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
