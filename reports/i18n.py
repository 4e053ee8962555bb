"""The report's words in English and Chinese.

The textbook claims keep the original wording of the Chinese table (from "Docker —— 从入门到
实践", yeasy/docker_practice, introduction/why.md, "对比传统虚拟机总结"); the English is a
translation. docker_practice's table has four rows; the isolation row (隔离性: 安全隔离 vs
完全隔离) is the fifth row found in the many copies of that table in Chinese tutorials.
Messages are `str.format` templates with named fields.
"""

from __future__ import annotations

LANGS = ("en", "zh")
ROWS = ("startup", "disk", "performance", "density", "isolation")

# The textbook table in its original words: row -> (containers, VMs). The Chinese messages take them from here.
ORIGINAL_CLAIMS = {
    "startup": ("秒级", "分钟级"),
    "disk": ("一般为 MB", "一般为 GB"),
    "performance": ("接近原生", "弱于"),
    "density": ("单机支持上千个容器", "一般几十个"),
    "isolation": ("安全隔离", "完全隔离"),
}
ORIGINAL_ROW_NAMES = {"startup": "启动", "disk": "硬盘使用", "performance": "性能", "density": "系统支持量",
                      "isolation": "隔离性"}
_ENGLISH_CLAIMS = {
    "startup": ("seconds", "minutes"),
    "disk": ("usually MB", "usually GB"),
    "performance": ("close to native", "weaker"),
    "density": ("thousands of containers on one machine", "usually a few dozen"),
    "isolation": ("secure isolation", "complete isolation"),
}
_ENGLISH_ROW_NAMES = {"startup": "Startup", "disk": "Disk use", "performance": "Performance",
                      "density": "Instances per host", "isolation": "Isolation"}


def _table_words(row_names: dict[str, str], claims: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The messages row.<row>, claim.<row>.c and claim.<row>.v of one language."""
    out = {}
    for row in ROWS:
        out[f"row.{row}"] = row_names[row]
        out[f"claim.{row}.c"], out[f"claim.{row}.v"] = claims[row]
    return out


MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        **_table_words(_ENGLISH_ROW_NAMES, _ENGLISH_CLAIMS),
        "title": "Containers vs virtual machines: the textbook table, measured",
        "subtitle": "The classic comparison table of the Chinese Docker tutorial “Docker —— 从入门到实践”, "
                    "set against what this machine measured, with the uncertainty and the published figures.",
        "generated": "Generated {when} from {n} results director{plural}.",
        "verdict.holds": "holds", "verdict.nuance": "holds, with nuance",
        "verdict.fails": "does not hold here", "verdict.unmeasured": "not measured",
        "col.feature": "Feature", "col.claim_c": "Textbook: containers", "col.claim_v": "Textbook: VMs",
        "col.measured": "Measured here", "col.verdict": "Verdict", "col.why": "Why",
        "col.published": "Published figures", "col.backend": "Backend", "col.workload": "Workload",
        "col.metric": "Metric", "col.n": "n", "col.median": "median", "col.p95": "p95", "col.ci": "95% CI",
        "col.unit": "unit", "col.dropped": "dropped", "col.host": "Host", "col.row": "Row",
        "col.check": "Check", "col.rule": "Rule applied",
        "summary.title": "The verdicts at a glance",
        "hosts.title": "Hosts side by side (headline numbers; each host's own ratios)",
        "legend.verdicts": "Holds: the measurements agree with the claim. Holds, with nuance: the direction is "
                           "right but the numbers or the reasons need a qualifier. Does not hold here: this "
                           "machine measured something else. Not measured: the data to judge is missing, and the "
                           "row says why.",
        "host.title": "Host {host}",
        "hosts.note": "Runs from {n} hosts are shown side by side. Every ratio and comparison uses numbers "
                      "from one host only.",
        "section.table": "The textbook table, with evidence",
        "section.figures": "Figures",
        "section.perf": "Performance relative to native, per workload",
        "section.density": "Density runs",
        "section.isolation": "Isolation: mechanisms, not a score",
        "section.env": "Environment",
        "section.caveats": "Caveats",
        "section.problems": "Missing or questionable data",
        "section.values": "All measured values",
        "section.sources": "Published figures: sources",
        "section.method": "How the verdicts are decided",
        "none": "none",
        "not_measured": "not measured",
        "not_measured.because": "not measured: {reason}",
        "reason.no_samples": "no samples of {metric}",
        "reason.no_ok": "{n} sample(s) of {metric}, none successful{error}",
        "reason.unavailable": "backend not available: {reason}",
        "reason.failed": "no samples of {metric}: {error}",
        "env.method": "repetitions", "env.confounders": "confounders",
        "reason.no_native": "no native baseline for {workload}",
        "reason.side_missing": "no {side} backend has data for this row",
        "reason.capped_unknown": "the suite capped the {side} runs and their memory per instance is unknown, "
                                 "so the host's capacity cannot be told",
        "side.container": "container", "side.vm": "VM",
        "flag.single": "1 sample: no spread, no CI",
        "flag.noisy": "noisy: CV {cv}",
        "flag.failed": "{n} failed or not finite",
        "flag.dropped": "{n} non-finite dropped",
        "flag.projected": "projected from memory",
        "flag.capped": "capped by the suite",
        "fig.startup": "Startup: time from request to ready",
        "fig.phases": "Where the startup time goes (median per phase)",
        "fig.density": "Density: host memory used against instances running",
        "fig.disk": "Disk: bytes shared by all instances vs bytes added per instance",
        "fig.perf": "Performance relative to native (1.0 = native)",
        "fig.isolation": "Isolation checks (green: isolated from the host)",
        "fig.missing": "No data for this figure: {what}.",
        "ax.startup.x": "time from request to ready (s, log scale)",
        "ax.startup.y": "fraction of runs ready",
        "ax.phases.x": "median time (s)",
        "ax.density.x": "instances running (count)",
        "ax.density.y": "host memory used ({unit})",
        "legend.budget": "memory budget",
        "label.offscale": "{what} {v}: far above this scale",
        "ax.disk.y": "bytes (log scale)",
        "ax.perf.x": "performance relative to native (×, higher is better)",
        "legend.shared": "shared (image / kernel + initrd + base disk)",
        "legend.instance": "per instance (upper dir / qcow2 overlay)",
        "legend.host_mem": "host memory",
        "legend.native": "native",
        "label.stopped": "stopped: {why}",
        "check.kernel_separate": "own kernel", "check.host_pids_hidden": "host PIDs hidden",
        "check.host_mounts_hidden": "host mounts hidden", "check.host_devices_hidden": "host devices hidden",
        "check.syscall_filter": "syscall filter", "check.escape_probes_blocked": "escape probes blocked",
        "check.own_network_stack": "own network stack",
        "iso.yes": "yes", "iso.no": "no", "iso.unknown": "not measured",
        "env.host": "host", "env.kernel": "kernel", "env.distro": "distribution", "env.cpu": "CPU",
        "env.memory": "memory", "env.cgroup": "cgroups", "env.kvm_device": "/dev/kvm",
        "env.accel": "accelerator", "env.versions": "versions", "env.commit": "git commit",
        "env.images": "images", "env.suite": "suite", "env.run": "run", "env.when": "started / finished",
        "env.tool": "virtlab", "env.argv": "command",
        "env.dirty": "(uncommitted changes)",
        "env.unknown": "unknown",
        "env.incomplete": "INCOMPLETE: the run was interrupted or crashed",
        "caveat.tcg": "VMs here ran under TCG, QEMU's software emulation ({reason}). Every guest instruction is "
                      "translated, so VM startup and performance are several times worse than with KVM "
                      "hardware virtualization. The VM numbers say what this machine can do, not what VMs cost "
                      "in general.",
        "caveat.kvm": "VMs here ran under KVM (hardware virtualization).",
        "caveat.noaccel": "The accelerator used by the VMs is not recorded; VM numbers cannot be labelled.",
        "caveat.shared": "This is a shared machine with {cpus} CPU core(s): other work running at the same "
                         "time adds noise, mostly to the tails (p95).",
        "caveat.small_n": "Some rows rest on few samples (smallest n = {n}); confidence intervals are wide and a "
                          "single sample has none. Run the table suite for tighter numbers.",
        "caveat.quick": "The quick suite uses the tiny busybox image and small counts: it shows the shape of the "
                        "differences, not their full size for a realistic distro image.",
        "caveat.pooled": "The samples of {n} runs on this host are pooled ({runs}; {commits} distinct git "
                         "commit(s)): check below that their environments match.",
        "caveat.anchors": "Published figures come from other hardware and configurations; they show orders of "
                          "magnitude, not targets for this machine.",
        "problems.none": "No problems found in the results.",
        "method.intro": "Each verdict applies one explicit rule to the medians (p50) measured on one host:",
        "rule.startup": "Holds if every container backend is ready in under {cmax} s and every VM profile takes "
                        "{vmin} s or more. Holds with nuance if containers are under {cmax} s and VMs are slower "
                        "than containers but at least one VM profile is ready in under {vmin} s. Does not hold if "
                        "a container takes {cmax} s or more, or a VM is ready as fast as a container.",
        "rule.disk": "Holds if every container's shared bytes are under 1 GB and every VM's are 1 GB or more. "
                     "Holds with nuance if the VM needs more bytes than the container but less than 1 GB. Does "
                     "not hold if a container needs 1 GB or more or a VM needs no more than a container.",
        "rule.performance": "Relative performance is the backend's median over native's (inverted for metrics "
                            "where lower is better), summarised per backend by the geometric mean over "
                            "workloads. Containers are close to native at {near} or more. Holds if containers "
                            "are close to native and every VM is below {near} under KVM. Holds with nuance if "
                            "the VM gap was measured under TCG, or VMs are weaker on some workloads only. Does "
                            "not hold if a container is below {near} or no VM workload is.",
        "rule.density": "Capacity is the count reached, or, when the suite capped the run, the larger of that "
                        "and host memory divided by memory per instance. Holds if measured container capacity "
                        "is {thousands} or more and VM capacity under {dozens}. Holds with nuance if that "
                        "needed a projection or VMs reach {dozens} or more. Does not hold if containers stay "
                        "under {thousands} or VMs reach as many as containers.",
        "rule.isolation": "Mechanism attributes, not a score. Does not hold if a container fails its escape "
                          "probes (not \"secure\") or a VM fails any check (not \"complete\"). Otherwise it holds "
                          "with nuance: a VM adds a kernel boundary, but no boundary is absolute.",
        # startup explanations
        "x.startup.c": "Containers were ready in {c} (p50, {cb}). Starting a container is a few system calls "
                       "(namespaces, an overlay mount, a cgroup) and one exec: no kernel boots, so it takes "
                       "milliseconds to a fraction of a second, faster still than the textbook's “seconds”.",
        "x.startup.c_slow": "Containers were ready in {c} (p50, {cb}): within the textbook's “seconds”, but slower "
                            "than a container usually starts (tens to hundreds of ms). Starting one is a few system "
                            "calls and an exec; here something else (a busy host, image unpacking, the engine) "
                            "added time.",
        "x.startup.v": "The fastest VM ({vb}) was ready in {v} (p50), {x}× the container's time. A VM must start "
                       "a VMM process, set up virtual hardware and boot its own kernel.",
        "x.startup.micro": "The micro profile boots the kernel directly (no firmware, no bootloader, a tiny "
                           "initramfs), which is why a minimal VM starts in seconds, not minutes; tuned microVMs "
                           "(Firecracker, Cloud Hypervisor) reach init in 0.1–0.25 s with KVM.",
        "x.startup.full": "The full-OS profile ({fb}) went through firmware, a distro kernel and initramfs and "
                          "systemd: {f} (p50). That path is where the reputation of slow VMs comes from.",
        "x.startup.tcg": "Under TCG every guest instruction is emulated in software, so these VM times are "
                         "several times what KVM would give on the same machine.",
        "x.startup.minutes": "“Minutes” describes installing or provisioning a VM (and old BIOS paths), not "
                             "booting one.",
        # disk explanations
        "x.disk.c": "A container shares its image ({cs}) with every other container from that image and adds "
                    "only its writable upper directory ({ci} per instance here): copy-on-write at file level.",
        "x.disk.v": "The VM needs a kernel, an initramfs and a disk built from the same image ({vs}, shared "
                    "through a qcow2 backing file) plus a qcow2 overlay per VM ({vi}).",
        "x.disk.small": "Both sides are small because the image is small: with a distro image the VM side grows "
                        "to hundreds of MB or GB (its own kernel, modules and a filesystem with free space), "
                        "while a container image stays the size of its files.",
        "x.disk.factor": "Here the VM's shared bytes are {x}× the container's.",
        # performance explanations
        "x.perf.c": "Containers ran at {c} of native (geometric mean over {n} workload(s), {cb}): a container "
                    "is an ordinary process, its instructions run directly on the CPU and its system calls go "
                    "straight to the host kernel.",
        "x.perf.v": "The VM ({vb}, {accel}) ran at {v} of native. {worst}",
        "x.perf.worst": "Its weakest workload was {w} at {r}.",
        "x.perf.tcg": "Under TCG the guest's code is translated instruction by instruction, so CPU-bound work "
                      "loses most; that gap is TCG's, not virtualization's. With KVM, published CPU and memory "
                      "results are within a few percent of native, while I/O and many small system calls still "
                      "cost more (exits to the hypervisor).",
        "x.perf.kvm": "With KVM the guest runs on the CPU directly; the remaining cost is in exits to the "
                      "hypervisor: I/O, interrupts, page-table work.",
        # density explanations
        "x.density.c": "Containers: {c} running at once ({why}), about {m} of host memory each. A container "
                       "costs little more than its processes.",
        "x.density.v": "VMs: {v} running at once ({why}), about {m} each: every VM carries its own kernel, "
                       "guest memory and a QEMU process.",
        "x.density.proj": "With {mem} of host memory, memory alone would allow about {pc} containers and about "
                          "{pv} VMs.",
        "x.density.nomem": "(“–” means the memory per instance could not be measured: the MemAvailable delta "
                           "and PSS were missing or not positive.)",
        "x.density.tcg": "Under TCG QEMU also reserves a translation cache per VM, which raises the memory per "
                         "VM measured here.",
        "x.density.limits": "Before memory runs out, containers often hit other limits: pid_max, 1024 ports "
                            "per Linux bridge, file descriptors.",
        # isolation explanations
        "x.iso.c": "Containers ({cb}): {mech}. They share the host kernel: namespaces hide host PIDs, mounts "
                   "and devices, and a seccomp filter narrows the system calls, but every container still "
                   "talks to the same kernel, so one kernel bug can be enough to escape.",
        "x.iso.v": "VMs ({vb}): {mech}. A VM has its own kernel; the host sees only the VMM process and the "
                   "few virtual devices it emulates.",
        "iso.own_kernel": "own kernel", "iso.shared_kernel": "shared kernel",
        "iso.isolated": "isolated: {checks}", "iso.not_isolated": "not isolated: {checks}",
        "x.iso.nuance": "“Complete” overstates it: the VM boundary is the hypervisor and its device model "
                        "(QEMU is a large program), and VM escapes exist too. “Secure” overstates containers "
                        "even more: they are not a sandbox by default.",
        "x.iso.failed": "These checks failed: {checks}.",
        "x.unmeasured": "This row cannot be judged: {reason}.",
        "x.partial": "Measured on one side only; the comparison needs both.",
        "cell.shared": "shared {v}", "cell.instance": "per instance {v}",
        "cell.perf": "geomean {g} over {n} workload(s) · weakest: {w} {r}",
        "cell.baseline": "1.00× (the baseline)", "cell.count": "{c} instances · n={n}",
        "cell.mem": "{m} per instance",
        "terminal.title": "virtlab report: the textbook table",
        "terminal.written": "written:",
    },
    "zh": {
        **_table_words(ORIGINAL_ROW_NAMES, ORIGINAL_CLAIMS),
        "title": "容器与虚拟机：教科书对比表的实测",
        "subtitle": "把《Docker —— 从入门到实践》中经典的对比表，与本机实测的数据、误差范围以及已发表的数据放在一起对照。",
        "generated": "生成于 {when}，来自 {n} 个结果目录。",
        "verdict.holds": "成立", "verdict.nuance": "基本成立，但有前提",
        "verdict.fails": "在本机不成立", "verdict.unmeasured": "未测量",
        "col.feature": "特性", "col.claim_c": "教科书：容器", "col.claim_v": "教科书：虚拟机",
        "col.measured": "本机实测", "col.verdict": "结论", "col.why": "原因",
        "col.published": "已发表的数据", "col.backend": "后端", "col.workload": "负载",
        "col.metric": "指标", "col.n": "样本数", "col.median": "中位数", "col.p95": "p95", "col.ci": "95% 置信区间",
        "col.unit": "单位", "col.dropped": "剔除", "col.host": "主机", "col.row": "行",
        "col.check": "检查项", "col.rule": "判定规则",
        "summary.title": "结论一览",
        "hosts.title": "各主机并排（主要数字；比值只在各自主机内计算）",
        "legend.verdicts": "成立：测量结果与说法一致。基本成立，但有前提：方向正确，但数字或原因需要加以限定。"
                           "在本机不成立：这台机器测到的是另一回事。未测量：缺少判断所需的数据，该行会说明原因。",
        "host.title": "主机 {host}",
        "hosts.note": "来自 {n} 台主机的结果并排显示。每个比值和比较只使用同一台主机的数据。",
        "section.table": "教科书对比表与证据",
        "section.figures": "图表",
        "section.perf": "各负载相对原生的性能",
        "section.density": "密度测试",
        "section.isolation": "隔离性：列出机制，而不是打分",
        "section.env": "测试环境",
        "section.caveats": "注意事项",
        "section.problems": "缺失或可疑的数据",
        "section.values": "全部测量值",
        "section.sources": "已发表的数据：来源",
        "section.method": "结论如何判定",
        "none": "无",
        "not_measured": "未测量",
        "not_measured.because": "未测量：{reason}",
        "reason.no_samples": "没有 {metric} 的样本",
        "reason.no_ok": "{metric} 有 {n} 个样本，但没有一个成功{error}",
        "reason.unavailable": "后端不可用：{reason}",
        "reason.failed": "没有 {metric} 的样本：{error}",
        "env.method": "重复方式", "env.confounders": "干扰因素",
        "reason.no_native": "{workload} 没有原生基线",
        "reason.side_missing": "没有任何{side}后端有这一行的数据",
        "reason.capped_unknown": "{side}的测试被套件上限截止，且每实例内存未知，因此无法判断主机能容纳多少",
        "side.container": "容器", "side.vm": "虚拟机",
        "flag.single": "只有 1 个样本：没有离散度，也没有置信区间",
        "flag.noisy": "波动大：变异系数 {cv}",
        "flag.failed": "{n} 个失败或非有限值",
        "flag.dropped": "剔除 {n} 个非有限值",
        "flag.projected": "按内存推算",
        "flag.capped": "受测试套件上限限制",
        "fig.startup": "启动：从发出请求到就绪的时间",
        "fig.phases": "启动时间花在哪里（各阶段中位数）",
        "fig.density": "密度：主机内存占用与运行实例数",
        "fig.disk": "硬盘：所有实例共享的字节数与每个实例新增的字节数",
        "fig.perf": "相对原生的性能（1.0 = 原生）",
        "fig.isolation": "隔离检查（绿色：与主机隔离）",
        "fig.missing": "此图没有数据：{what}。",
        "ax.startup.x": "从请求到就绪的时间（秒，对数刻度）",
        "ax.startup.y": "已就绪的运行比例",
        "ax.phases.x": "中位时间（秒）",
        "ax.density.x": "同时运行的实例数（个）",
        "ax.density.y": "主机内存占用（{unit}）",
        "legend.budget": "内存预算",
        "label.offscale": "{what} {v}：远高于此刻度",
        "ax.disk.y": "字节数（对数刻度）",
        "ax.perf.x": "相对原生的性能（倍，越高越好）",
        "legend.shared": "共享（镜像 / 内核 + initrd + 基础磁盘）",
        "legend.instance": "每个实例（upper 目录 / qcow2 覆盖层）",
        "legend.host_mem": "主机内存",
        "legend.native": "原生",
        "label.stopped": "停止原因：{why}",
        "check.kernel_separate": "独立内核", "check.host_pids_hidden": "看不到主机进程",
        "check.host_mounts_hidden": "看不到主机挂载", "check.host_devices_hidden": "看不到主机设备",
        "check.syscall_filter": "系统调用过滤", "check.escape_probes_blocked": "逃逸探测被阻止",
        "check.own_network_stack": "独立网络栈",
        "iso.yes": "是", "iso.no": "否", "iso.unknown": "未测量",
        "env.host": "主机", "env.kernel": "内核", "env.distro": "发行版", "env.cpu": "CPU",
        "env.memory": "内存", "env.cgroup": "cgroups", "env.kvm_device": "/dev/kvm",
        "env.accel": "加速器", "env.versions": "版本", "env.commit": "git 提交",
        "env.images": "镜像", "env.suite": "测试套件", "env.run": "运行", "env.when": "开始 / 结束",
        "env.tool": "virtlab", "env.argv": "命令",
        "env.dirty": "（有未提交的修改）",
        "env.unknown": "未知",
        "env.incomplete": "不完整：这次运行被中断或崩溃了",
        "caveat.tcg": "本机的虚拟机运行在 TCG（QEMU 的纯软件模拟）下（{reason}）。客户机的每条指令都要经过翻译，"
                      "所以虚拟机的启动和性能比使用 KVM 硬件虚拟化时差好几倍。这些虚拟机数据说明的是这台机器的情况，"
                      "而不是虚拟机的一般代价。",
        "caveat.kvm": "本机的虚拟机运行在 KVM（硬件虚拟化）下。",
        "caveat.noaccel": "没有记录虚拟机使用的加速器，无法为虚拟机数据标注。",
        "caveat.shared": "这是一台共享机器，只有 {cpus} 个 CPU 核心：同时运行的其他任务会带来噪声，主要影响尾部（p95）。",
        "caveat.small_n": "有些行的样本很少（最少 n = {n}）：置信区间很宽，单个样本没有置信区间。"
                          "运行 table 套件可以得到更精确的数字。",
        "caveat.quick": "quick 套件使用很小的 busybox 镜像和较少的次数：它显示差异的形状，"
                        "而不是真实发行版镜像下差异的全部大小。",
        "caveat.pooled": "本主机 {n} 次运行的样本被合并在一起（{runs}；{commits} 个不同的 git 提交）：请在下方确认它们的环境一致。",
        "caveat.anchors": "已发表的数据来自其他硬件和配置：它们说明数量级，而不是本机应达到的目标。",
        "problems.none": "结果中没有发现问题。",
        "method.intro": "每个结论都对同一台主机上测得的中位数（p50）应用一条明确的规则：",
        "rule.startup": "如果所有容器后端都在 {cmax} 秒内就绪，且所有虚拟机配置都需要 {vmin} 秒或更久，则成立。"
                        "如果容器在 {cmax} 秒内就绪、虚拟机比容器慢，但至少有一种虚拟机配置在 {vmin} 秒内就绪，"
                        "则基本成立但有前提。如果某个容器需要 {cmax} 秒或更久，或某个虚拟机和容器一样快，则不成立。",
        "rule.disk": "如果所有容器的共享字节数都小于 1 GB，且所有虚拟机的都不小于 1 GB，则成立。"
                     "如果虚拟机比容器占用更多但小于 1 GB，则基本成立但有前提。"
                     "如果某个容器需要 1 GB 或更多，或虚拟机并不比容器大，则不成立。",
        "rule.performance": "相对性能 = 后端的中位数 / 原生的中位数（越低越好的指标取倒数），"
                            "每个后端取各负载的几何平均。达到 {near} 及以上算接近原生。"
                            "如果容器接近原生、且在 KVM 下每个虚拟机都低于 {near}，则成立。"
                            "如果虚拟机的差距是在 TCG 下测得的，或虚拟机只在部分负载上较弱，则基本成立但有前提。"
                            "如果某个容器低于 {near}，或虚拟机没有任何负载低于 {near}，则不成立。",
        "rule.density": "容量取实际达到的数量；如果测试被套件上限截止，则取它与“主机内存 / 每实例内存”中较大的一个。"
                        "如果容器容量实测达到 {thousands} 个以上且虚拟机少于 {dozens} 个，则成立。"
                        "如果需要推算，或虚拟机达到 {dozens} 个以上，则基本成立但有前提。"
                        "如果容器不到 {thousands} 个，或虚拟机和容器一样多，则不成立。",
        "rule.isolation": "列出机制属性，而不是打分。如果容器没有挡住逃逸探测（不“安全”），"
                          "或虚拟机有任何一项检查失败（不“完全”），则不成立。"
                          "否则基本成立但有前提：虚拟机多了一层内核边界，但任何边界都不是绝对的。",
        "x.startup.c": "容器在 {c} 内就绪（p50，{cb}）。启动容器只是几个系统调用（命名空间、一次 overlay 挂载、"
                       "一个 cgroup）加一次 exec：不需要启动内核，所以只要几毫秒到零点几秒，比教科书说的“秒级”还快。",
        "x.startup.c_slow": "容器在 {c} 内就绪（p50，{cb}）：符合教科书的“秒级”，但比容器通常的启动时间（几十到几百毫秒）"
                            "要慢。启动容器只是几个系统调用加一次 exec；这里有别的因素（主机繁忙、解包镜像、容器引擎）增加了时间。",
        "x.startup.v": "最快的虚拟机（{vb}）在 {v} 内就绪（p50），是容器的 {x} 倍。虚拟机要启动一个 VMM 进程、"
                       "建立虚拟硬件，并启动它自己的内核。",
        "x.startup.micro": "micro 配置直接引导内核（没有固件、没有引导程序、只有一个很小的 initramfs），"
                           "所以最小的虚拟机是秒级而不是分钟级启动；经过调优的微虚拟机（Firecracker、Cloud Hypervisor）"
                           "在 KVM 下 0.1–0.25 秒即可运行到 init。",
        "x.startup.full": "完整系统配置（{fb}）要经过固件、发行版内核和 initramfs 以及 systemd：{f}（p50）。"
                          "“虚拟机启动慢”的印象正是来自这条路径。",
        "x.startup.tcg": "在 TCG 下客户机的每条指令都由软件模拟，所以这些虚拟机时间是同一台机器上使用 KVM 时的好几倍。",
        "x.startup.minutes": "“分钟级”描述的是安装或创建（配置）一台虚拟机（以及老式 BIOS 引导），而不是启动本身。",
        "x.disk.c": "容器与同一镜像的所有容器共享镜像（{cs}），每个实例只增加自己的可写 upper 目录（本机每个实例 {ci}）："
                    "这是文件级的写时复制。",
        "x.disk.v": "虚拟机需要内核、initramfs 和一块由同一镜像构建的磁盘（{vs}，通过 qcow2 后备文件共享），"
                    "再加上每台虚拟机一个 qcow2 覆盖层（{vi}）。",
        "x.disk.small": "两边都很小，是因为镜像本身很小：如果使用发行版镜像，虚拟机这边会增长到几百 MB 甚至 GB"
                        "（自己的内核、模块以及带空闲空间的文件系统），而容器镜像只是其中文件的大小。",
        "x.disk.factor": "本机虚拟机的共享字节数是容器的 {x} 倍。",
        "x.perf.c": "容器达到原生的 {c}（{n} 个负载的几何平均，{cb}）：容器就是普通进程，指令直接在 CPU 上执行，"
                    "系统调用直接进入主机内核。",
        "x.perf.v": "虚拟机（{vb}，{accel}）达到原生的 {v}。{worst}",
        "x.perf.worst": "它最弱的负载是 {w}，为 {r}。",
        "x.perf.tcg": "在 TCG 下客户机代码逐条指令翻译，所以 CPU 密集的负载损失最大；这个差距来自 TCG，而不是虚拟化本身。"
                      "使用 KVM 时，已发表的 CPU 和内存结果与原生相差只有百分之几，而 I/O 和大量小系统调用仍然更贵"
                      "（需要退出到虚拟机监控器）。",
        "x.perf.kvm": "在 KVM 下客户机直接在 CPU 上运行；剩下的开销来自退出到虚拟机监控器：I/O、中断、页表操作。",
        "x.density.c": "容器：同时运行了 {c} 个（{why}），每个约占主机内存 {m}。容器的开销比它的进程本身多不了多少。",
        "x.density.v": "虚拟机：同时运行了 {v} 个（{why}），每个约 {m}：每台虚拟机都带着自己的内核、客户机内存和一个 QEMU 进程。",
        "x.density.proj": "主机内存为 {mem}，仅按内存计算，大约可容纳 {pc} 个容器和 {pv} 台虚拟机。",
        "x.density.nomem": "（“–”表示每实例内存无法测得：MemAvailable 差值和 PSS 缺失或不为正。）",
        "x.density.tcg": "在 TCG 下 QEMU 还为每台虚拟机保留一块翻译缓存，这使本机测得的每台虚拟机内存更高。",
        "x.density.limits": "在内存耗尽之前，容器常常先碰到其他限制：pid_max、每个 Linux 网桥最多 1024 个端口、文件描述符。",
        "x.iso.c": "容器（{cb}）：{mech}。它们共享主机内核：命名空间隐藏了主机的进程、挂载和设备，"
                   "seccomp 过滤缩小了系统调用面，但所有容器仍然在和同一个内核对话，一个内核漏洞就可能足以逃逸。",
        "x.iso.v": "虚拟机（{vb}）：{mech}。虚拟机有自己的内核；主机只看到 VMM 进程和它模拟的少数虚拟设备。",
        "iso.own_kernel": "独立内核", "iso.shared_kernel": "共享内核",
        "iso.isolated": "已隔离：{checks}", "iso.not_isolated": "未隔离：{checks}",
        "x.iso.nuance": "“完全”说得过头了：虚拟机的边界是虚拟机监控器及其设备模型（QEMU 是一个很大的程序），"
                        "虚拟机逃逸也存在。“安全”对容器来说更是言过其实：容器默认并不是沙箱。",
        "x.iso.failed": "这些检查失败了：{checks}。",
        "x.unmeasured": "这一行无法判定：{reason}。",
        "x.partial": "只测了一边；比较需要两边的数据。",
        "cell.shared": "共享 {v}", "cell.instance": "每实例 {v}",
        "cell.perf": "几何平均 {g}（{n} 个负载）· 最弱：{w} {r}",
        "cell.baseline": "1.00×（基线）", "cell.count": "{c} 个实例 · n={n}",
        "cell.mem": "每实例 {m}",
        "terminal.title": "virtlab 报告：教科书对比表",
        "terminal.written": "已写入：",
    },
}


def t(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang` (falling back to English), formatted with `params`."""
    table = MESSAGES.get(lang, MESSAGES["en"])
    template = table.get(key) or MESSAGES["en"].get(key) or key
    return template.format(**params) if params else template


def check_label(lang: str, check: str, default: str | None = None) -> str:
    """The name of isolation check ``check`` in ``lang``; ``default`` (or the raw name) for a check without one."""
    key = f"check.{check}"
    if key in MESSAGES["en"]:
        return t(lang, key)
    return check if default is None else default


def check_messages() -> list[str]:
    """Keys present in one language but not the other (used by the tests)."""
    en, zh = set(MESSAGES["en"]), set(MESSAGES["zh"])
    return sorted(en ^ zh)
