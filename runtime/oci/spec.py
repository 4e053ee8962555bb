"""The bundle's config.json: loading, validation, and the default spec that `spec` writes."""

import os

from runtime.oci import ljson as json
from runtime.oci.errors import SpecError
from runtime.oci.state import validate_id as validate_id  # defined there: start/delete need no spec

MAX_CONFIG_BYTES = 4 << 20

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

DEFAULT_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
DEFAULT_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def rootfs_path(config: dict, bundle: str) -> str:
    """The absolute, symlink-free host path of root.path (relative paths are relative to the bundle)."""
    root = (config.get("root") or {}).get("path") or "rootfs"
    path = os.path.realpath(os.path.join(bundle, root))
    if not os.path.isdir(path):
        raise SpecError(f"rootfs {path} does not exist or is not a directory")
    return path


def load(bundle: str) -> dict:
    """Read and validate BUNDLE/config.json; return the config dict."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"cannot read {path}: no such file (is {bundle} an OCI bundle?)") from None
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SpecError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise SpecError(f"{path} is not valid JSON: {e}") from None
    validate(config, path)
    return config


def _type(value, kind, what: str):
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(f"invalid config: {what} must be a {name}, not {type(value).__name__}")
    return value


def validate(config: dict, path: str = "config.json") -> None:
    """Check the parts of the config the runtime relies on; raise SpecError naming the field."""
    _type(config, dict, "the document")
    if "ociVersion" not in config:
        raise SpecError(f"invalid config {path}: ociVersion is required")
    root = config.get("root")
    if root is not None:
        _type(root, dict, "root")
        _type(root.get("path"), str, "root.path")
    proc = config.get("process")
    if proc is not None:
        _type(proc, dict, "process")
        args = proc.get("args")
        if not args:
            raise SpecError("invalid config: process.args must not be empty")
        _type(args, list, "process.args")
        for a in args:
            _type(a, str, "process.args[]")
        cwd = _type(proc.get("cwd", "/"), str, "process.cwd")
        if not cwd.startswith("/"):
            raise SpecError(f"invalid config: process.cwd {cwd!r} must be an absolute path")
        for e in _type(proc.get("env") or [], list, "process.env"):
            _type(e, str, "process.env[]")
        user = _type(proc.get("user") or {}, dict, "process.user")
        for key in ("uid", "gid"):
            v = user.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > 0xFFFFFFFE:
                raise SpecError(f"invalid config: process.user.{key} {v!r} must be a non-negative integer")
        for rl in _type(proc.get("rlimits") or [], list, "process.rlimits"):
            _type(rl, dict, "process.rlimits[]")
    linux = config.get("linux") or {}
    _type(linux, dict, "linux")
    seen = set()
    for ns in _type(linux.get("namespaces") or [], list, "linux.namespaces"):
        _type(ns, dict, "linux.namespaces[]")
        t = ns.get("type")
        if t not in NAMESPACE_TYPES:
            raise SpecError(f"invalid config: unknown namespace type {t!r}")
        if t in seen:
            raise SpecError(f"invalid config: namespace {t} is listed twice")
        seen.add(t)
        if ns.get("path") is not None and not str(ns["path"]).startswith("/"):
            raise SpecError(f"invalid config: namespace {t} path {ns['path']!r} must be absolute")
    for m in _type(config.get("mounts") or [], list, "mounts"):
        _type(m, dict, "mounts[]")
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest:
            raise SpecError(f"invalid config: mount {m!r} has no destination")
    for key in ("maskedPaths", "readonlyPaths"):
        for p in _type(linux.get(key) or [], list, f"linux.{key}"):
            if not isinstance(p, str) or not p.startswith("/"):
                raise SpecError(f"invalid config: linux.{key} entry {p!r} must be an absolute path")
    hooks = config.get("hooks") or {}
    _type(hooks, dict, "hooks")
    for kind, items in hooks.items():
        for h in _type(items or [], list, f"hooks.{kind}"):
            _type(h, dict, f"hooks.{kind}[]")
            if not isinstance(h.get("path"), str) or not h["path"].startswith("/"):
                raise SpecError(f"invalid config: hooks.{kind} path {h.get('path')!r} must be absolute")


def default_spec(rootless: bool = False) -> dict:
    """Return the default config.json that `virtlab-runtime spec` writes (runc's template)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec: dict = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "virtlab",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(DEFAULT_MASKED),
            "readonlyPaths": list(DEFAULT_READONLY),
        },
    }
    if rootless:
        linux = spec["linux"]
        del linux["resources"]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        spec["mounts"].append({"destination": "/sys", "type": "none", "source": "/sys",
                               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        for m in spec["mounts"]:
            if m["destination"] == "/dev/pts":
                m["options"].remove("gid=5")
    return spec
