"""cgroup managers of the OCI runtime: v1, hybrid (v1 plus the cgroup2 tree) and v2.

::

    mgr = open_manager(cgroups_path, container_id)     # plan the directories
    mgr.apply(resources); mgr.add(pid)                  # create, limit, join
    mgr.update(resources); mgr.freeze(); mgr.stats()    # while it runs
    state["cgroup_paths"] = mgr.paths                   # what load_manager needs later
    load_manager(paths).destroy()

Importing this package reads nothing and imports only the path helpers; the v1 or v2
module is imported by the first ``open_manager`` or ``load_manager`` call.
"""

from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, FreezeTimeout, InvalidResources
from runtime.oci.cgroups.hierarchy import DEFAULT_ROOT, detect_mode, remove_tree, under

__all__ = [
    "CgroupError",
    "CgroupManager",
    "CgroupUnsupported",
    "FreezeTimeout",
    "InvalidResources",
    "detect_mode",
    "load_manager",
    "open_manager",
    "remove_if_empty",
]


def __getattr__(name: str):
    if name == "CgroupManager":  # for type hints; importing it eagerly would cost the start path
        from runtime.oci.cgroups.base import CgroupManager

        return CgroupManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_manager(cgroups_path: str | None, container_id: str, root: str = DEFAULT_ROOT):
    """The manager for a container's cgroup at ``cgroups_path`` (OCI linux.cgroupsPath).

    None means ``/virtlab/<container_id>``. Absolute paths are taken from each hierarchy's
    mount point, relative ones from the caller's own cgroup. Nothing is created yet.
    """
    mode = detect_mode(root)
    if mode == "v2":
        from runtime.oci.cgroups.v2 import V2Manager

        return V2Manager.open(cgroups_path, container_id, root)
    from runtime.oci.cgroups.v1 import V1Manager

    return V1Manager.open(cgroups_path, container_id, root, mode)


def _check_paths(paths: dict, root: str) -> None:
    if not isinstance(paths, dict) or not paths:
        raise CgroupError(f"invalid cgroup paths {paths!r}: expected a non-empty object")
    for key, path in paths.items():
        if not isinstance(key, str) or not isinstance(path, str) or not under(path, root):
            raise CgroupError(f"invalid cgroup path {key!r}: {path!r} is not inside {root}")


def remove_if_empty(paths: dict, root: str = DEFAULT_ROOT) -> bool:
    """Remove a stopped container's cgroup directories if nothing is left in them.

    One rmdir per directory (and the empty parents virtlab made), without importing the
    v1/v2 managers: the delete of a stopped container stays cheap. Returns False, having
    removed what it could, when a directory still holds processes or child cgroups; the
    caller then uses ``load_manager(paths)`` to kill and remove the rest.
    """
    _check_paths(paths, root)
    done = True
    for path in sorted(set(paths.values())):
        try:
            remove_tree(path, stop_at=root, timeout=0)
        except CgroupError:
            done = False
    return done


def load_manager(paths: dict, root: str = DEFAULT_ROOT):
    """Reopen a manager from the ``paths`` an earlier manager reported (state.json)."""
    _check_paths(paths, root)
    mode = detect_mode(root)
    if mode == "v2":
        from runtime.oci.cgroups.v2 import V2Manager

        return V2Manager(paths, root)
    from runtime.oci.cgroups.v1 import V1Manager

    return V1Manager(paths, root, mode)
