"""What the monitor runs when a container exits: `restart` (by policy) or `cleanup` (--rm).

    python -m runtime.engine.hook ROOT ID FDS restart|cleanup

`restart` recreates the container with the stdio fds the monitor kept (FDS = "in,out,err")
and prints the new init's pid; the init becomes the monitor's child because the monitor is a
subreaper. `cleanup` removes the container as `rm -f` does.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    """Entry point of the hook; returns the process exit code."""
    if len(argv) != 4:
        print("usage: python -m runtime.engine.hook ROOT ID FDS restart|cleanup", file=sys.stderr)
        return 125
    root, cid, fds, verb = argv
    from runtime.engine.engine import Engine
    from runtime.engine.errors import EngineError, NoSuchContainer

    eng = Engine(root)
    try:
        if verb == "cleanup":
            eng.remove(cid, force=True)
            return 0
        if verb == "restart":
            return _restart(eng, cid, fds)
    except NoSuchContainer:
        return 0
    except EngineError as exc:
        print(f"vl-monitor hook: {exc}", file=sys.stderr)
        return 1
    return 125


def _restart(eng, cid: str, fds: str) -> int:
    import fcntl
    import os
    from pathlib import Path

    from runtime.engine import launcher
    from runtime.engine.records import write_atomic

    cdir = eng.store.path(cid)
    master = -1
    lock = os.open(cdir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    # A `stop` may hold the lock while it waits for the monitor: never block on it.
    while True:
        if (cdir / "stop-requested").exists():
            os.close(lock)
            return 1
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.01)
    try:
        rec = eng.store.load(cid)
        if (cdir / "stop-requested").exists():
            return 1
        rt = eng.runtime_for(rec)
        rt.delete(cid, force=True)
        launcher.prepare_bundle(eng, rec)
        pid_file = Path(cdir) / "init.pid"
        if rec["Spec"].get("tty"):  # a new terminal: its master goes to the monitor with the pid
            master = launcher._create_with_console(rt, cid, Path(cdir), pid_file)
            pid = int(pid_file.read_text().strip())
        else:
            if not fds:
                print(f"vl-monitor hook: container {cid[:12]} has no stdio kept for restarts", file=sys.stderr)
                return 1
            in_r, out_w, err_w = (int(x) for x in fds.split(","))
            pid = rt.create(cid, Path(cdir), pid_file, (in_r, out_w, err_w))
        rt.start(cid)
        count = int(rec.get("RestartCount", 0)) + 1
        rec["RestartCount"] = count
        now = time.time()
        rec["State"].update(Pid=pid, StartedAtTs=now, LaunchedAtTs=now, Status="running", Restarting=False)
        eng.store.save(rec)
        write_atomic(cdir / "restarted", json.dumps({"pid": pid, "at": rec["State"]["StartedAtTs"], "count": count}))
    finally:
        os.close(lock)
    if master >= 0:  # stdout is the monitor's socket
        import socket

        out = socket.socket(fileno=os.dup(1))
        out.sendmsg([f"{pid}\n".encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, master.to_bytes(4, sys.byteorder))])
        out.close()
        os.close(master)
    else:
        print(pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
