"""Container state: the state machine and ROOT/<id>/state.json.

Status is derived, as runc does, from facts rather than trusted from the file:
the init process must be alive with the same start time (a reused pid does not
count), ``exec.fifo`` exists while the container is created, and the pause flag
is set by pause/resume. A status of ``creating`` is written while `create` works.
"""

import posix  # not os: see runtime.oci.lpath

from runtime.oci import ljson as json
from runtime.oci import lpath
from runtime.oci.errors import ContainerExists, ContainerNotFound, OCIError, SpecError, StateError

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"
OCI_VERSION = "1.0.2"
_PF_EXITING = 0x4

# operation -> the states it is allowed in
ALLOWED = {
    "start": {CREATED},
    "kill": {CREATED, RUNNING, PAUSED},
    "delete": {STOPPED},
    "pause": {RUNNING},
    "resume": {PAUSED},
    "exec": {CREATED, RUNNING},
    "ps": {CREATED, RUNNING, PAUSED, STOPPED},
}


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")


def validate_id(container_id: str) -> str:
    """Return the id if it is a safe container id, else raise SpecError."""
    if (not isinstance(container_id, str) or not 0 < len(container_id) <= 1024 or not container_id[0].isalnum()
            or not container_id[0].isascii() or not _ID_CHARS.issuperset(container_id)):
        raise SpecError(f"invalid container id {container_id!r}: use letters, digits, '_', '.', '+', '-' "
                        "(up to 1024, not starting with a punctuation mark)")
    return container_id


def check(state: dict, operation: str) -> None:
    """Raise StateError unless OPERATION is allowed in the container's current status."""
    if state["status"] not in ALLOWED[operation]:
        raise StateError(state["id"], state["status"], operation)


def container_dir(root: str, container_id: str) -> str:
    """The state directory of a container."""
    return lpath.join(root, validate_id(container_id))


def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of PID, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # A zombie, or an init that is exiting (PF_EXITING): a dying PID-namespace init waits in exit
    # until every process of its namespace is reaped, by parents that may be outside the container.
    if fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
        return None
    return int(fields[19])


def init_state(root: str, container_id: str, bundle: str, annotations: dict | None) -> dict:
    """Create ROOT/<id>/ (0700, failing if it exists) and return a fresh state in status creating."""
    import os  # create imports it anyway

    os.makedirs(root, mode=0o711, exist_ok=True)
    path = container_dir(root, container_id)
    try:
        # 0711: a container root mapped to another uid (user namespace) must reach its exec.fifo.
        posix.mkdir(path, 0o711)
    except FileExistsError:
        raise ContainerExists(f"container {container_id} already exists") from None
    return {"ociVersion": OCI_VERSION, "id": container_id, "status": CREATING, "pid": 0,
            "bundle": bundle, "annotations": annotations or {}, "dir": path}


def save(state: dict) -> None:
    """Write state.json atomically."""
    path = lpath.join(state["dir"], "state.json")
    tmp = path + ".tmp"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600)
    try:
        posix.write(fd, json.dumps({k: v for k, v in state.items() if k != "dir"}).encode())
    finally:
        posix.close(fd)
    posix.rename(tmp, path)


def load(root: str, container_id: str) -> dict:
    """Read a container's state and refresh its status; ContainerNotFound if there is none."""
    path = container_dir(root, container_id)
    try:
        with open(lpath.join(path, "state.json"), "rb") as f:
            state = json.loads(f.read())
    except FileNotFoundError:
        if lpath.isdir(path):
            # create is still working, or died before its first save
            return {"ociVersion": OCI_VERSION, "id": container_id, "status": CREATING, "pid": 0,
                    "bundle": "", "annotations": {}, "dir": path}
        raise ContainerNotFound(f"container {container_id} does not exist") from None
    except ValueError:
        raise OCIError(f"state of container {container_id} is corrupt: {path}/state.json") from None
    state["dir"] = path
    refresh(state)
    return state


def refresh(state: dict) -> str:
    """Recompute state['status'] from the init process, exec.fifo and the pause flag."""
    pid = state.get("pid") or 0
    if state.get("status") == CREATING and not pid:
        return CREATING
    alive = pid > 0 and proc_start_time(pid) == state.get("start_time")
    if not alive:
        state["status"] = STOPPED
    elif state.get("paused"):
        state["status"] = PAUSED
    elif lpath.exists(lpath.join(state["dir"], "exec.fifo")):
        state["status"] = CREATED
    else:
        state["status"] = RUNNING
    return state["status"]


def public(state: dict) -> dict:
    """The OCI state document, as `state` prints it."""
    status = state["status"]
    doc = {"ociVersion": state.get("ociVersion", OCI_VERSION), "id": state["id"], "status": status,
           "pid": state.get("pid", 0) if status != STOPPED else 0, "bundle": state.get("bundle", "")}
    for key in ("rootfs", "created", "owner"):
        if key in state:
            doc[key] = state[key]
    if state.get("annotations"):
        doc["annotations"] = state["annotations"]
    return doc


def hook_state(state: dict) -> dict:
    """The state passed to hooks on stdin (the OCI state, pid included even when stopping)."""
    doc = public(state)
    doc["pid"] = state.get("pid", 0)
    return doc


def list_ids(root: str) -> list[str]:
    """The ids of all containers under ROOT."""
    try:
        names = sorted(posix.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if lpath.isfile(lpath.join(root, n, "state.json"))]
