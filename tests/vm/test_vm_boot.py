"""Real boots under libvirt (TCG here, KVM where it works): few boots, each checks a lot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vm_tier_helpers import unique

from vmdriver.driver import VmSpec
from vmdriver.readiness import READY, wait_marker

pytestmark = pytest.mark.vm

VIRTLAB = str(Path(sys.executable).parent / "virtlab")


def _qemu_pids(dname: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"guest={dname},"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_boot_exec_stats_stop_remove(drv, vm_root):
    name = unique("life")
    tmp_path = vm_root / "files"  # QEMU's user must reach the user disk too
    tmp_path.mkdir(mode=0o711, exist_ok=True)
    # Case 55 at boot: a raw disk whose content is a qcow2 header naming a host file.
    sentinel = tmp_path / "shadow"
    sentinel.write_text("secret\n")
    user_disk = tmp_path / "guest-written.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", str(sentinel),
                    str(user_disk), "1M"], check=True)
    vm = drv.create(VmSpec(image="busybox", name=name, memory_mib=128, cmd=["sleep", "600"],
                           disk=str(user_disk), disk_format="raw"))
    assert vm.state == "stopped"
    boot = drv.start(name, timeout=120)
    assert boot.accel in ("kvm", "tcg") and boot.accel_reason
    assert boot.requested <= boot.vmm_started <= boot.ready
    assert set(boot.phases) == {"vmm", "firmware", "kernel", "init"}
    assert abs(sum(boot.phases.values()) - boot.total) < 0.05 or boot.phases["firmware"] == 0
    assert 0 < boot.guest["init"] <= boot.guest["ready"]

    r = drv.exec(name, ["sh", "-c", "echo out; echo err >&2; hostname; exit 3"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, f"out\n{name}\n".encode(), b"err\n")
    assert drv.exec(name, ["nosuchcommand"]).exit_code == 127
    # Commands see only stdio (plus ls's own directory fd): not the agent's port.
    assert drv.exec(name, ["ls", "/proc/self/fd"]).stdout.split() == [b"0", b"1", b"2", b"3"]
    t0 = time.monotonic()
    assert drv.exec(name, ["sleep", "60"], timeout=2).exit_code == 137  # killed at the timeout
    assert time.monotonic() - t0 < 20
    # The guest sees the user's disk as raw bytes: the qcow2 magic, not the "backing" file.
    head = drv.exec(name, ["sh", "-c", "head -c 4 /dev/vdb | od -An -c"]).stdout.decode().split()
    assert head == ["Q", "F", "I", "373"]
    assert "secret" not in drv.exec(name, ["cat", "/dev/vdb"]).stdout.decode(errors="replace")
    # exec runs in the image's root, with the image's environment, not the initramfs's.
    env = drv.exec(name, ["env"]).stdout.decode()
    assert "PATH=/usr/local/sbin" in env
    assert drv.exec(name, ["ls", "/etc/virtlab"]).exit_code != 0

    s = drv.stats(name)
    assert s["cpu_ns"] > 0 and s["mem_bytes"] > 0 and s["mem_limit"] == 128 << 20
    assert s["blk_read"] > 0
    du = drv.disk_usage(name)
    assert du["shared_bytes"] > 10 << 20 and 0 < du["instance_bytes"] < du["shared_bytes"]
    assert READY in drv.logs(name)

    assert [v.state for v in drv.list() if v.name == name] == ["running"]
    code = drv.stop(name, timeout=20)
    assert code == 143  # sleep got SIGTERM from the guest init
    assert [v.state for v in drv.list() if v.name == name] == ["stopped"]
    assert _qemu_pids(vm.domain) == []
    assert drv.remove(name) is True and drv.remove(name) is False
    assert sentinel.read_text() == "secret\n"


def test_micro_vm_with_64_mib_boots_and_serves_exec(drv):
    """The issue's density guests: 64 MiB (the PVH ELF kernel and no tracefs make it fit)."""
    name = unique("m64")
    drv.create(VmSpec(image="busybox", name=name, memory_mib=64, cmd=["sleep", "600"]))
    art = drv.prepare("busybox")
    boot = drv.start(name, timeout=120)
    assert 0 < boot.guest["init"] <= boot.guest["ready"]
    meminfo = drv.exec(name, ["cat", "/proc/meminfo"]).stdout.decode()
    fields = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in meminfo.splitlines())}
    assert fields["MemTotal"] < 64 << 10  # really a 64 MiB guest
    assert fields["MemAvailable"] > 2 << 10  # with room left to run something
    r = drv.exec(name, ["sh", "-c", "head -c 1000000 /dev/zero | wc -c; echo ok"])
    assert (r.exit_code, r.stdout.split()) == (0, [b"1000000", b"ok"])
    if art.kernel is not None and art.kernel.name == "vmlinux":
        assert b"Kernel panic" not in drv.logs(name)
    assert drv.stop(name, timeout=20) == 143


def test_stop_of_a_guest_that_ignores_shutdown_is_bounded(drv):
    """A paused guest answers neither the agent nor ACPI: stop must destroy it after its timeout."""
    from vmdriver.driver import DESTROY_TIMEOUT, KILL_WAIT

    name = unique("hung")
    vm = drv.create(VmSpec(image="busybox", name=name, cmd=["sleep", "600"]))
    drv.start(name, timeout=120)
    drv.conn.lookupByName(vm.domain).suspend()
    timeout = 4.0
    t0 = time.monotonic()
    drv.stop(name, timeout=timeout)
    took = time.monotonic() - t0
    # A behaviour bound, generous on a loaded host: the timeout, then destroy, never the
    # 30 s job waits or unbounded waits an unbounded stop could add up.
    assert took < timeout + DESTROY_TIMEOUT + KILL_WAIT, took
    assert took >= timeout - 0.5  # it did wait for the guest first
    assert [v.state for v in drv.list() if v.name == name] == ["stopped"]
    assert _qemu_pids(vm.domain) == []


def _cut_libvirt_sockets() -> int:
    """Shut down this process's sockets to libvirtd, as a daemon restart does; returns how many."""
    import socket

    cut = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            if s.family == socket.AF_UNIX and str(s.getpeername()).endswith("libvirt/libvirt-sock"):
                s.shutdown(socket.SHUT_RDWR)
                cut += 1
        except OSError:
            pass
        finally:
            s.close()
    return cut


def test_stop_after_the_libvirt_connection_died(drv):
    """After a libvirtd restart the cached connection still looks alive; stop must reconnect."""
    name = unique("recon")
    drv.create(VmSpec(image="busybox", name=name, cmd=["sleep", "600"]))
    drv.start(name, timeout=120)
    assert _cut_libvirt_sockets() >= 1
    t0 = time.monotonic()
    assert drv.stop(name, timeout=20) == 143
    assert time.monotonic() - t0 < 20 + 20
    assert [v.state for v in drv.list() if v.name == name] == ["stopped"]


def test_cli_run_rm_passes_output_and_exit_code(vm_root):
    name = unique("cli")
    r = subprocess.run([VIRTLAB, "--root", str(vm_root), "vm", "run", "--rm", "--name", name, "busybox",
                        "sh", "-c", "echo hi; exit 3"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hi\n"
    ps = subprocess.run([VIRTLAB, "--root", str(vm_root), "vm", "ps", "-a", "-q"], capture_output=True, text=True)
    assert name not in ps.stdout.split()


def test_qemu_direct_boots_the_same_artifacts(drv, tmp_path):
    from vmdriver.agent import AgentClient
    from vmdriver.qemu import cleanup, direct_command

    art = drv.prepare("busybox")
    accel, _ = drv.accel()
    run_dir = tmp_path / "direct"
    argv = direct_command(art, VmSpec(image="busybox", name=unique("direct"), cmd=["sleep", "600"]), accel, run_dir)
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        got = wait_marker(run_dir / "console.log", READY, 120, alive=lambda: p.poll() is None)
        assert got is not None, (run_dir / "console.log").read_text(errors="replace")[-500:]
        assert got[0] > t0
        with AgentClient(run_dir / "agent.sock", timeout=30) as agent:
            r = agent.exec(["cat", "/proc/cmdline"], 20)
        assert r.exit_code == 0 and b"console=ttyS0" in r.stdout
    finally:
        p.kill()
        p.wait()
        p.stderr.close()
        cleanup(run_dir)
    assert not run_dir.exists()


def test_isolated_network_and_crash_leftovers(drv):
    import libvirt

    from vmdriver.network import BRIDGE, NETWORK_NAME, users

    name = unique("net")
    try:
        vm = drv.create(VmSpec(image="busybox", name=name, cmd=["sleep", "600"], network="virtlab"))
        net_xml = drv.conn.networkLookupByName(NETWORK_NAME).XMLDesc(0)
        assert "<forward" not in net_xml and "<dhcp" not in net_xml
        drv.start(name, timeout=120)
        addr = drv.inspect(name)["address"].split("/")[0]
        r = drv.exec(name, ["sh", "-c", "ip -4 addr show eth0; ping -c 1 -W 5 10.89.0.1"])
        assert r.exit_code == 0, r.stdout + r.stderr
        assert addr.encode() in r.stdout
        # No route out: only the isolated subnet is reachable.
        routes = drv.exec(name, ["ip", "route"]).stdout.decode()
        assert "10.89.0.0/24" in routes
        # Crash: QEMU dies under libvirt's feet. ps tells the truth; rm cleans up, twice.
        pids = _qemu_pids(vm.domain)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [v.state for v in drv.list() if v.name == name] != ["stopped"]:
            time.sleep(0.1)
        assert [v.state for v in drv.list() if v.name == name] == ["stopped"]
        assert drv.remove(name) and not drv.remove(name)
        with pytest.raises(libvirt.libvirtError):
            drv.conn.lookupByName(vm.domain)
        if not users(drv.conn):  # the last VM on the network took it and its bridge along
            assert NETWORK_NAME not in drv.conn.listNetworks() + drv.conn.listDefinedNetworks()
            assert not os.path.exists(f"/sys/class/net/{BRIDGE}")
    finally:
        drv.remove(name)


@pytest.mark.slow
def test_full_profile_boots_systemd_from_a_debian_image(drv):
    """Firmware (OVMF) -> systemd-boot -> Debian kernel -> the image's systemd; slow: builds a Debian image."""
    from runtime.image.build import build_debian
    from runtime.image.store import ImageStore

    ref = "debian-systemd:vmtest"
    build_debian(ImageStore(drv.root / "image"), ref=ref, extra=("systemd-sysv",))
    name = unique("full")
    try:
        drv.create(VmSpec(image=ref, name=name, profile="full", memory_mib=512, network="virtlab"))
        boot = drv.start(name, timeout=600)
        assert set(boot.phases) == {"vmm", "firmware", "kernel", "init"}
        assert boot.phases["firmware"] > 0  # UEFI really ran
        r = drv.exec(name, ["sh", "-c", "cat /proc/1/comm; uname -r; test -d /run/systemd/system && echo systemd"])
        assert r.exit_code == 0 and r.stdout.decode().split()[0] == "systemd"
        # The VM's assigned address, set like the micro guest's (minbase has no iproute2: read /proc).
        addr = drv.inspect(name)["address"].split("/")[0]
        r = drv.exec(name, ["sh", "-c", "cat /proc/net/fib_trie; cat /proc/net/route"])
        assert addr in r.stdout.decode(), r.stdout + r.stderr
        assert "00000000\t0100590A" in r.stdout.decode()  # default route via 10.89.0.1
        r = drv.exec(name, ["sh", "-c", "echo out; echo err >&2; exit 4"])
        assert (r.exit_code, r.stdout, r.stderr) == (4, b"out\n", b"err\n")
        assert drv.stop(name, timeout=60) is None  # systemd powers off; no entrypoint exit code
        assert [v.state for v in drv.list() if v.name == name] == ["stopped"]
        assert drv.remove(name)
    finally:
        drv.remove(name)
