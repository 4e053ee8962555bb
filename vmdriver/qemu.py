"""The same boot without libvirt: a plain qemu-system-x86_64 argv (the qemu-direct peer).

`direct_command` mirrors what libvirt starts for a micro VM (machine, accelerator and
TCG cache, memory, direct kernel boot, an explicit-format blockdev chain, serial console
to a file, the agent port, fw_cfg config), so the two can be timed side by side.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from vmdriver import disk
from vmdriver.domain import AGENT_PORT, FWCFG_CONFIG, MICRO_CMDLINE, check_cmdline, fwcfg_value, guest_config
from vmdriver.errors import InvalidSpec

QEMU = "qemu-system-x86_64"


def _esc(value: object) -> str:
    """A value inside a QEMU option list: commas are doubled, so a path cannot add options."""
    return str(value).replace(",", ",,")


def run_dir_for(art: Any, name: str) -> Path:
    """Default per-run folder of a direct boot: <root>/vm/direct/<name>."""
    return Path(art.base_disk).parent.parent / "direct" / name


def guest_argv(image_config: dict[str, Any], cmd: list[str] | None) -> list[str]:
    """Entrypoint + command, as docker combines them."""
    entry = list(image_config.get("Entrypoint") or [])
    return entry + (list(cmd) if cmd else list(image_config.get("Cmd") or []))


def direct_command(art: Any, spec: Any, accel: str, run_dir: Path | None = None) -> list[str]:
    """The qemu-system-x86_64 argv that boots `spec` from `art` without libvirt.

    Creates `run_dir` (default <root>/vm/direct/<name>) with a fresh qcow2 overlay on the
    base disk; the console goes to run_dir/console.log and the agent socket is
    run_dir/agent.sock. Remove the folder with `cleanup(run_dir)` when done.
    """
    if accel not in ("kvm", "tcg"):
        raise InvalidSpec(f"unknown accelerator {accel!r}")
    if art.kernel is None:
        raise InvalidSpec("direct_command boots the micro profile (direct kernel boot) only")
    name = spec.name or f"direct-{os.urandom(3).hex()}"
    run_dir = Path(run_dir) if run_dir is not None else run_dir_for(art, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    overlay = run_dir / "overlay.qcow2"
    if not overlay.exists():
        disk.create_overlay(Path(art.base_disk), art.base_format, overlay)
    argv_guest = guest_argv(art.image_config, spec.cmd)
    env = list(art.image_config.get("Env") or [])
    cfg = guest_config(name, argv_guest, env, art.image_config.get("WorkingDir") or "/")
    accel_opt = "kvm" if accel == "kvm" else f"tcg,tb-size={getattr(spec, 'tb_cache_mib', 64)}"
    base = Path(art.base_disk).resolve()
    argv = [
        QEMU, "-name", f"virtlab-{name}", "-nodefaults", "-no-user-config", "-display", "none",
        "-machine", "q35,usb=off", "-accel", accel_opt,
        "-m", str(spec.memory_mib), "-smp", str(spec.vcpus),
        "-kernel", str(art.kernel), "-initrd", str(art.initrd), "-append", check_cmdline(MICRO_CMDLINE),
        "-blockdev", f"driver=file,filename={_esc(base)},node-name=base-file,read-only=on",
        "-blockdev", f"driver={art.base_format},file=base-file,node-name=base,read-only=on",
        "-blockdev", f"driver=file,filename={_esc(overlay)},node-name=top-file",
        "-blockdev", "driver=qcow2,file=top-file,backing=base,node-name=top",
        "-device", "virtio-blk-pci,drive=top",
        "-serial", f"file:{_esc(run_dir / 'console.log')}",
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,id=agent,path={_esc(run_dir / 'agent.sock')},server=on,wait=off",
        "-device", f"virtserialport,chardev=agent,name={AGENT_PORT}",
        "-fw_cfg", f"name={FWCFG_CONFIG},string={fwcfg_value(cfg)}",
        "-no-reboot",
    ]
    if accel == "kvm":
        argv[argv.index("-accel") + 2:argv.index("-accel") + 2] = ["-cpu", "host"]
    return argv


def cleanup(run_dir: Path) -> None:
    """Remove a direct boot's folder (overlay, console log, socket); fine if it is gone."""
    shutil.rmtree(run_dir, ignore_errors=True)
