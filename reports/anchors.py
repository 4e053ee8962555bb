"""Published figures to set each row against, with their sources (from ANCHORS.md).

Each anchor is a short figure, the conditions that matter, and where it was published.
The source weight follows ANCHORS.md: [P] paper, [D] project documentation, [R] raw data,
[I] issue or gist, [B] blog. Numbers marked "derived" were computed from published raw data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    """One published figure: what it says (en, zh) and where it comes from."""

    en: str
    zh: str
    source: str

    def text(self, lang: str) -> str:
        """The figure in `lang`."""
        return self.zh if lang == "zh" else self.en


ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "startup": (
        Anchor("OCI runtime step: crun ≈17–47 ms, runc ≈33–225 ms per container",
               "OCI 运行时这一步：crun 约 17–47 ms，runc 约 33–225 ms",
               "crun README [D]; youki README (hyperfine, 100 runs) [D]"),
        Anchor("engine-level run: 0.1–0.7 s (nerdctl run, 1000 runs, Debian 12)",
               "容器引擎级别的 run：0.1–0.7 秒（nerdctl run，1000 次，Debian 12）",
               "gist hegerdes/c9b1a171d82bf19a10c8505ee6b9ee10 [I]"),
        Anchor("Firecracker: ≤125 ms from InstanceStart to guest /sbin/init (i3.metal, KVM)",
               "Firecracker：从 InstanceStart 到客户机 /sbin/init ≤125 ms（i3.metal，KVM）",
               "firecracker SPECIFICATION.md [D]"),
        Anchor("QEMU (pc) direct kernel boot 243.5 ms median, Cloud Hypervisor 102.5 ms (derived, 500 boots)",
               "QEMU（pc）直接引导内核中位数 243.5 ms，Cloud Hypervisor 102.5 ms（推算，500 次启动）",
               "firecracker-microvm/nsdi2020-data, boot-serial-*.dat [R]"),
        Anchor("Ubuntu cloud image with cloud-init on Cloud Hypervisor: 7–9 s to ready",
               "Cloud Hypervisor 上带 cloud-init 的 Ubuntu 云镜像：7–9 秒就绪",
               "Depot blog, “How we got microVMs booting in under a second” [B]"),
    ),
    "disk": (
        Anchor("base images: alpine ≈5 MB, ubuntu ≈64 MB; a container's writable layer can be a few bytes",
               "基础镜像：alpine 约 5 MB，ubuntu 约 64 MB；容器自己的可写层可以只有几个字节",
               "Docker Hub image pages, as summarised in virtlab's ANCHORS.md §0 [D]"),
        Anchor("VM disks: hundreds of MB to several GB for most distros; minimal VMs ≈50 MB or a few MB",
               "虚拟机磁盘：大多数发行版为几百 MB 到几 GB；最小的虚拟机约 50 MB 甚至几 MB",
               "Manco et al., “My VM is Lighter (and Safer) than your Container”, SOSP 2017 [P]"),
    ),
    "performance": (
        Anchor("Docker within noise of native for CPU and memory (LINPACK 290.9 vs 290.8 GFLOPS)",
               "Docker 的 CPU 和内存性能与原生的差别在噪声范围内（LINPACK 290.9 对 290.8 GFLOPS）",
               "Felter et al., IBM RC25482 / ISPASS 2015; thewmf/kvm-docker-comparison [P][R]"),
        Anchor("KVM: tuned LINPACK ≈2% below native, untuned 130 vs 291 GFLOPS; random-read IOPS ≈55% of native",
               "KVM：调优后 LINPACK 比原生低约 2%，未调优 130 对 291 GFLOPS；随机读 IOPS 约为原生的 55%",
               "thewmf/kvm-docker-comparison spreadsheets [R]"),
        Anchor("Firecracker: >95% of bare-metal compute promised (integration test pending)",
               "Firecracker：承诺计算性能达到裸机的 95% 以上（集成测试尚未完成）",
               "firecracker SPECIFICATION.md [D]"),
    ),
    "density": (
        Anchor("4000 Firecracker microVMs on one i3.metal in ≈60–78 s",
               "一台 i3.metal 上 4000 个 Firecracker 微虚拟机，约 60–78 秒启动完",
               "firecracker-demo README [D]"),
        Anchor(">2500 RunD secure containers on a node with 384 GB",
               "一个 384 GB 内存的节点上超过 2500 个 RunD 安全容器",
               "Li et al., RunD, USENIX ATC 2022 [P]"),
        Anchor("Docker stopped at 1850 containers: kernel.pid_max 32768; a Linux bridge takes at most 1024 ports",
               "Docker 在 1850 个容器处停止：kernel.pid_max 为 32768；一个 Linux 网桥最多 1024 个端口",
               "moby/moby #23332; jupyter tmpnb #46 [I]"),
    ),
    "isolation": (
        Anchor("containers are not a sandbox; a single vulnerability can be enough to escape one",
               "容器不是沙箱；一个漏洞就可能足以逃逸",
               "google/gvisor README [D]"),
        Anchor("x86-64 Linux exposes more than 400 syscalls to every container",
               "x86-64 Linux 向每个容器暴露 400 多个系统调用",
               "“Why MicroVMs Exist”, microvm.thecontainerdbook.com ch. 3 [B]"),
        Anchor("Firecracker emulates only 5 devices, plus a jailer and per-thread seccomp",
               "Firecracker 只模拟 5 种设备，另有 jailer 和按线程的 seccomp",
               "firecracker docs [D]"),
    ),
}
