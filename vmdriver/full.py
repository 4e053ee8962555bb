"""The `full` profile: UEFI firmware (OVMF) -> systemd-boot -> a Debian kernel -> systemd of the image.

The disk is built without loop devices: a GPT image (sfdisk on a file) holding an EFI
system partition (mkfs.vfat -C + mtools) and an ext4 root (mkfs.ext4 -d) of the image's
layers, converted to a qcow2 base. The image must bring systemd (`/sbin/init`); the
kernel is the image's own `/boot/vmlinuz-*` when it has one, else Debian's cloud kernel,
whose modules are added to the root filesystem. The initramfs is virtlab's (it loads the
virtio modules and switches to the disk's root); readiness and exec come from two small
systemd units added to the disk: `virtlab-ready` writes the marker when multi-user.target
is reached, `virtlab-agent` serves the exec protocol with the image's own shell.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from vmdriver import disk
from vmdriver.errors import ArtifactError
from vmdriver.layout import FileLock, Layout

SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
OVMF_CANDIDATES = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
)
GUEST_DIR = Path(__file__).resolve().parent / "guest"
# No udev in a minimal image: /dev/ttyS0 never becomes a .device unit, and the serial
# getty would hold multi-user.target for 90 s. The console stays read-only anyway.
FULL_CMDLINE = (
    "console=ttyS0 quiet panic=-1 no_timer_check virtlab.full virtlab.root=/dev/vda2 "
    "systemd.mask=serial-getty@ttyS0.service"
)
ESP_MIB = 64
SECTOR = 512
# An image without kmod (debootstrap's minbase has none) cannot load modules: these units
# then fail and leave systemd "degraded" (binfmt_misc is a module in Debian's kernels).
NO_KMOD_MASKED = (
    "kmod-static-nodes.service", "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
)
KMOD_PATHS = ("usr/bin/kmod", "bin/kmod", "usr/sbin/modprobe", "sbin/modprobe")

READY_UNIT = """\
[Unit]
Description=virtlab: tell the host that the system is up
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'read t _ < /proc/uptime; i=$(cat /run/virtlab/init-uptime 2>/dev/null || echo 0); echo "VIRTLAB_READY init=$i ready=$t" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
"""

AGENT_UNIT = """\
[Unit]
Description=virtlab exec agent (virtio-serial org.virtlab.agent)
After=local-fs.target

[Service]
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=/bin/sh /usr/local/lib/virtlab/agent.sh
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def _recipe() -> str:
    """A short hash of what virtlab adds to a full disk, so that a change rebuilds it."""
    import hashlib

    h = hashlib.sha256()
    for part in (FULL_CMDLINE, READY_UNIT, AGENT_UNIT, *NO_KMOD_MASKED):
        h.update(part.encode())
    for f in ("agent-full.sh", "init.sh", "lib.sh"):
        h.update((GUEST_DIR / f).read_bytes())
    return h.hexdigest()[:12]


def find_ovmf() -> tuple[str, str]:
    """The OVMF code and variables template installed on this host."""
    for code, vars_ in OVMF_CANDIDATES:
        if os.path.isfile(code) and os.path.isfile(vars_):
            return code, vars_
    raise ArtifactError("the full profile needs OVMF (UEFI firmware): apt-get install ovmf")


def _tools() -> None:
    for tool in ("mkfs.vfat", "mcopy", "mmd", "sfdisk", "mkfs.ext4"):
        if not shutil.which(tool):
            raise ArtifactError(f"the full profile needs {tool} (apt-get install dosfstools mtools fdisk e2fsprogs)")
    if not SYSTEMD_BOOT.is_file():
        raise ArtifactError(f"the full profile needs {SYSTEMD_BOOT} (apt-get install systemd-boot-efi)")


# ---------------------------------------------------------------- writing into the image's tree


def _parent_fd(root_fd: int, rel: str) -> tuple[int, str]:
    """An O_PATH fd of rel's parent inside the root (symlinks resolved in the root), and the leaf name."""
    from runtime.image.rootpath import clean_parts, open_dir

    parts = clean_parts(rel)
    if not parts:
        raise ArtifactError(f"cannot write {rel!r} into the image: empty path")
    return open_dir(root_fd, parts[:-1], create=True), parts[-1]


def write_in_root(root: Path, rel: str, data: bytes, mode: int = 0o644) -> None:
    """Create or replace a regular file at `rel` inside `root`, never following a symlink out of it."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pfd, leaf = _parent_fd(root_fd, rel)
        try:
            try:
                st = os.lstat(leaf, dir_fd=pfd)
                if stat.S_ISDIR(st.st_mode):
                    raise ArtifactError(f"cannot write {rel} into the image: it is a directory")
                os.unlink(leaf, dir_fd=pfd)  # replace, never write through, whatever was there
            except FileNotFoundError:
                pass
            fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=pfd)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)  # O_CREAT's mode is masked by the umask
                f.write(data)
        finally:
            os.close(pfd)
    finally:
        os.close(root_fd)


def exists_in_root(root: Path, rel: str) -> bool:
    """Whether `rel` exists inside `root` (as anything, a dangling symlink too), resolved in the root."""
    from runtime.image.rootpath import clean_parts, open_dir

    parts = clean_parts(rel)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            pfd = open_dir(root_fd, parts[:-1])
        except Exception:  # noqa: BLE001 - a missing or non-directory parent: it does not exist
            return False
        try:
            os.lstat(parts[-1], dir_fd=pfd)
            return True
        except OSError:
            return False
        finally:
            os.close(pfd)
    finally:
        os.close(root_fd)


def symlink_in_root(root: Path, rel: str, target: str) -> None:
    """Create (or replace) a symlink at `rel` inside `root`; the target is stored verbatim."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pfd, leaf = _parent_fd(root_fd, rel)
        try:
            try:
                os.unlink(leaf, dir_fd=pfd)
            except FileNotFoundError:
                pass
            os.symlink(target, leaf, dir_fd=pfd)
        finally:
            os.close(pfd)
    finally:
        os.close(root_fd)


def copy_tree_in_root(src: Path, root: Path, rel: str) -> None:
    """Copy the host tree `src` (ours: kernel modules) to `rel` inside `root`, confined to it."""
    for dirpath, _dirnames, filenames in os.walk(src):
        sub = os.path.relpath(dirpath, src)
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            dest = f"{rel}/{name}" if sub == "." else f"{rel}/{sub}/{name}"
            write_in_root(root, dest, p.read_bytes(), 0o644)


def image_kernel(rootfs: Path) -> tuple[Path, str] | None:
    """The image's own /boot/vmlinuz-<version> (regular file), if it has one."""
    boot = rootfs / "boot"
    if boot.is_symlink() or not boot.is_dir():
        return None
    for p in sorted(boot.glob("vmlinuz-*")):
        if not p.is_symlink() and p.is_file():
            return p, p.name.removeprefix("vmlinuz-")
    return None


def has_systemd(rootfs: Path) -> bool:
    """Whether the image's /sbin/init is systemd (checked without following links out of the tree)."""
    from runtime.image.rootpath import clean_parts, open_dir

    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for cand in ("sbin/init", "usr/sbin/init"):
            parts = clean_parts(cand)
            try:
                d = open_dir(fd, parts[:-1])
            except Exception:  # noqa: BLE001 - a missing or odd path just means "not here"
                continue
            try:
                target = os.readlink(parts[-1], dir_fd=d)
            except OSError:
                continue
            finally:
                os.close(d)
            if "systemd" in target:
                return True
    finally:
        os.close(fd)
    return False


# ---------------------------------------------------------------- the disk


def _run(argv: list[str], what: str, input_: str | None = None) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, input=input_, timeout=600)
    if r.returncode != 0:
        raise ArtifactError(f"cannot {what}: {r.stderr.strip()[-400:]}")


def build_esp(dest: Path, kernel: Path, initrd: Path, cmdline: str) -> None:
    """A FAT EFI system partition image: systemd-boot plus one entry for kernel + initrd."""
    _run(["mkfs.vfat", "-F", "32", "-n", "VIRTLAB-ESP", "-C", str(dest), str(ESP_MIB * 1024)], "make the ESP")
    env_img = ["-i", str(dest)]
    _run(["mmd", *env_img, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"], "make ESP folders")
    with tempfile.TemporaryDirectory(dir=dest.parent) as t:
        conf = Path(t) / "loader.conf"
        conf.write_text("timeout 0\ndefault virtlab.conf\neditor no\n")
        entry = Path(t) / "virtlab.conf"
        entry.write_text(f"title virtlab\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n")
        for src, dst in ((SYSTEMD_BOOT, "::/EFI/BOOT/BOOTX64.EFI"), (kernel, "::/vmlinuz"), (initrd, "::/initrd.img"),
                         (conf, "::/loader/loader.conf"), (entry, "::/loader/entries/virtlab.conf")):
            _run(["mcopy", *env_img, str(src), dst], f"copy {src.name} into the ESP")


def _copy_into(dest_fd: int, src: Path, offset: int) -> None:
    """Copy `src` into the open file at `offset`, leaving zero blocks as holes."""
    block = 1 << 20
    zero = bytes(block)
    with open(src, "rb") as f:
        pos = offset
        while True:
            chunk = f.read(block)
            if not chunk:
                break
            if chunk != zero[: len(chunk)]:
                os.pwrite(dest_fd, chunk, pos)
            pos += len(chunk)


def assemble_gpt(dest: Path, esp: Path, root: Path) -> None:
    """A GPT disk image: partition 1 = ESP, partition 2 = Linux root (sfdisk on a file, no loop)."""
    mib = 1 << 20
    esp_size, root_size = esp.stat().st_size, root.stat().st_size
    total = mib + esp_size + root_size + mib
    with open(dest, "wb") as f:
        f.truncate(total)
    esp_start = mib // SECTOR
    root_start = esp_start + esp_size // SECTOR
    script = (
        "label: gpt\n"
        f"start={esp_start}, size={esp_size // SECTOR}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n"
        f"start={root_start}, size={root_size // SECTOR}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n"
    )
    _run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(dest)], "partition the full disk", script)
    fd = os.open(dest, os.O_WRONLY | os.O_CLOEXEC)
    try:
        _copy_into(fd, esp, esp_start * SECTOR)
        _copy_into(fd, root, root_start * SECTOR)
    finally:
        os.close(fd)


def prepare_full(layout: Layout, image: Any, image_ref: str, cfg: dict[str, Any]) -> Any:
    """Build (once per image) the full profile's bootable qcow2 disk."""
    from vmdriver.artifacts import Artifacts
    from vmdriver.initramfs import ensure_initramfs
    from vmdriver.kernel import GuestKernel, ensure_kernel

    _tools()
    code, vars_ = find_ovmf()
    final = layout.disks / f"{image.digest_hex}.full-{_recipe()}.qcow2"
    kernel_version = ""
    with FileLock(layout.locks / f"disk-{image.digest_hex}.lock"):
        meta = final.with_suffix(".kernel")
        if not final.is_file():
            with tempfile.TemporaryDirectory(dir=layout.tmp, prefix="full-") as tmp:
                t = Path(tmp)
                rootfs = t / "rootfs"
                rootfs.mkdir()
                image.flatten(rootfs)
                if not has_systemd(rootfs):
                    raise ArtifactError(
                        f"image {image_ref} has no systemd (/sbin/init): the full profile boots the image's "
                        "own init; build it with systemd-sysv"
                    )
                own = image_kernel(rootfs)
                if own is not None:
                    # The image's kernel and its own modules, copied into the store (regular files only).
                    kdir = layout.kernels / f"image-{image.digest_hex[:16]}-{own[1]}"
                    kdir.mkdir(mode=0o711, exist_ok=True)
                    shutil.copyfile(own[0], kdir / "vmlinuz")
                    kernel = GuestKernel(own[1], kdir / "vmlinuz", rootfs / "lib" / "modules" / own[1], "image")
                else:
                    kernel = ensure_kernel(layout)
                    copy_tree_in_root(kernel.modules_dir, rootfs, f"lib/modules/{kernel.version}")
                initrd = ensure_initramfs(layout, kernel)
                agent = (GUEST_DIR / "agent-full.sh").read_bytes()
                write_in_root(rootfs, "usr/local/lib/virtlab/agent.sh", agent, 0o755)
                lib = (GUEST_DIR / "lib.sh").read_bytes()
                write_in_root(rootfs, "usr/local/lib/virtlab/lib.sh", lib, 0o644)
                write_in_root(rootfs, "etc/systemd/system/virtlab-ready.service", READY_UNIT.encode())
                write_in_root(rootfs, "etc/systemd/system/virtlab-agent.service", AGENT_UNIT.encode())
                for unit in ("virtlab-ready.service", "virtlab-agent.service"):
                    symlink_in_root(rootfs, f"etc/systemd/system/multi-user.target.wants/{unit}", f"../{unit}")
                if not any(exists_in_root(rootfs, k) for k in KMOD_PATHS):
                    for unit in NO_KMOD_MASKED:
                        symlink_in_root(rootfs, f"etc/systemd/system/{unit}", "/dev/null")
                root_raw = t / "root.raw"
                disk.build_ext4(rootfs, root_raw)
                shutil.rmtree(rootfs)
                esp = t / "esp.img"
                build_esp(esp, kernel.vmlinuz, initrd, FULL_CMDLINE)
                raw = t / "disk.raw"
                assemble_gpt(raw, esp, root_raw)
                root_raw.unlink()
                out = t / "base.qcow2"
                disk.raw_to_qcow2(raw, out)
                raw.unlink()
                os.chmod(out, 0o644)
                os.rename(out, final)
                meta.write_text(kernel.version + "\n")
        kernel_version = meta.read_text().strip() if meta.exists() else ""
    return Artifacts(
        image=image_ref, image_id=image.id, profile="full", kernel=None, initrd=None, base_disk=final,
        base_format="qcow2", kernel_version=kernel_version, image_config=cfg,
        sizes={"base_disk": disk.allocated_bytes(final), "firmware": os.path.getsize(code)},
        firmware=code, nvram_template=vars_,
    )
