"""Lifecycle hooks: run each with the state JSON on stdin, its own env and a timeout.

A hook may exit without reading stdin; the resulting EPIPE is not an error.
Failing createRuntime, createContainer, prestart and startContainer hooks fail
the operation; failing poststart and poststop hooks only log a warning (OCI spec).
"""

from runtime.oci import ljson as json
from runtime.oci.errors import HookError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
FATAL = {"prestart", "createRuntime", "createContainer", "startContainer"}


def run(config_hooks: dict | None, kind: str, state: dict, warn=None) -> None:
    """Run the hooks of KIND in order; raise HookError for a fatal kind, else call WARN(message)."""
    for i, hook in enumerate((config_hooks or {}).get(kind) or []):
        try:
            run_one(hook, state)
        except HookError as e:
            msg = f"{kind} hook #{i} ({hook.get('path')}) failed: {e}"
            if kind in FATAL:
                raise HookError(msg) from None
            if warn:
                warn(msg)


def run_one(hook: dict, state: dict) -> None:
    """Run one hook and wait for it (bounded by hook['timeout'] seconds when set)."""
    import subprocess

    path = hook["path"]
    args = hook.get("args") or [path]
    env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
    timeout = hook.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
        raise HookError(f"timeout must be a positive integer, got {timeout!r}")
    data = json.dumps(state).encode()
    try:
        proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        raise HookError(f"cannot execute: {e.strerror}") from None
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookError(f"timed out after {timeout} s") from None
    except BrokenPipeError:  # the hook did not read its stdin: allowed
        out, err = b"", b""
        proc.wait()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip()[-500:]
        raise HookError(f"exit status {proc.returncode}" + (f": {detail}" if detail else ""))
