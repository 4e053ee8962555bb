"""Guest kernel choice: the host's /boot kernel when present (copied into the store), cached."""

from __future__ import annotations

import platform

from vmdriver import kernel
from vmdriver.layout import Layout


def test_host_boot_kernel_needs_image_and_modules(tmp_path):
    boot, mods = tmp_path / "boot", tmp_path / "modules"
    boot.mkdir()
    mods.mkdir()
    assert kernel.host_kernel_paths(boot, mods) is None
    (boot / f"vmlinuz-{platform.release()}").write_bytes(b"kernel")
    assert kernel.host_kernel_paths(boot, mods) is None  # no modules.dep yet
    (mods / platform.release()).mkdir()
    (mods / platform.release() / "modules.dep").write_text("")
    assert kernel.host_kernel_paths(boot, mods) == (boot / f"vmlinuz-{platform.release()}", mods / platform.release())


def test_host_kernel_is_copied_into_the_store_once(tmp_path, monkeypatch):
    boot, mods = tmp_path / "boot", tmp_path / "modules" / platform.release()
    boot.mkdir()
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text("")
    src = boot / f"vmlinuz-{platform.release()}"
    src.write_bytes(b"host kernel")
    monkeypatch.setattr(kernel, "host_kernel_paths", lambda: (src, mods))
    monkeypatch.setattr(kernel, "_download_cloud_kernel", lambda layout: (_ for _ in ()).throw(AssertionError))
    layout = Layout(tmp_path / "root")
    k = kernel.ensure_kernel(layout)
    assert k.source == "host /boot" and k.version == platform.release()
    assert k.vmlinuz.parent.parent == layout.kernels and k.vmlinuz.read_bytes() == b"host kernel"
    assert not k.vmlinuz.is_symlink()
    src.write_bytes(b"changed")  # cached: the store keeps its copy
    assert kernel.ensure_kernel(layout).vmlinuz.read_bytes() == b"host kernel"


def test_without_host_kernel_a_cached_download_is_reused(tmp_path, monkeypatch):
    layout = Layout(tmp_path / "root")
    layout.ensure()
    d = layout.kernels / "6.1.0-99-cloud-amd64"
    (d / "tree" / "lib" / "modules" / "6.1.0-99-cloud-amd64").mkdir(parents=True)
    (d / "vmlinuz").write_bytes(b"k")
    (d / "source").write_text("linux-image-6.1.0-99-cloud-amd64 6.1.0-99\n")
    monkeypatch.setattr(kernel, "host_kernel_paths", lambda: None)
    monkeypatch.setattr(kernel, "_download_cloud_kernel", lambda layout: (_ for _ in ()).throw(AssertionError))
    k = kernel.ensure_kernel(layout)
    assert k.version == "6.1.0-99-cloud-amd64" and k.source.startswith("linux-image-")
