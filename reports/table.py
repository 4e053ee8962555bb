"""The five rows of the textbook table for one host: evidence, verdict and explanation.

`analyse(results, host, lang)` looks only at the samples of one host (comparison group),
so no ratio ever mixes hosts. Each row keeps the claim for containers and for VMs, the
measured value per backend with its uncertainty, a verdict from an explicit rule (the
RULE_* thresholds below, explained in the report), and an explanation for learners.
A row without data says "not measured" and why; no number is ever invented.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from reports import i18n
from reports.anchors import ANCHORS, Anchor
from reports.load import DEFAULT_KINDS, Results, Run, require_single_host, workload_of
from reports.stats import Ratio, Summary, geomean, ratio_of_medians, summarize
from reports.units import fmt_bytes, fmt_number, fmt_percent, fmt_ratio, fmt_seconds, fmt_value

ROWS = ("startup", "disk", "performance", "density", "isolation")
VERDICTS = ("holds", "nuance", "fails", "unmeasured")

# The explicit thresholds of the verdict rules (see the rule.* messages).
STARTUP_SECONDS_MAX = 10.0  # "秒级": a container ready in under 10 s starts "in seconds"
STARTUP_MINUTES_MIN = 60.0  # "分钟级": a VM taking 60 s or more starts "in minutes"
DISK_GB = 1e9  # "一般为 GB": 1 GB and more
PERF_NEAR_NATIVE = 0.90  # "接近原生": at least 90% of native
DENSITY_THOUSANDS = 1000  # "上千个"
DENSITY_DOZENS_MAX = 100  # "几十个": fewer than 100

ISOLATION_CHECKS = ("kernel_separate", "host_pids_hidden", "host_mounts_hidden", "host_devices_hidden",
                    "syscall_filter", "escape_probes_blocked", "own_network_stack")
CONTAINER_PHASES = ("engine", "create", "start", "exec")
VM_PHASES = ("vmm", "firmware", "kernel", "init")
# Words in density's `stopped_by` that mean the suite, not the host, ended the run.
SUITE_STOP_WORDS = re.compile(r"\b(cap|capped|suite|budget|requested|target)\b", re.IGNORECASE)
_ORDER = ["native", "container", "runc", "podman", "vm-micro", "vm-full", "qemu-direct"]


@dataclass
class Backend:
    """A backend as the report shows it: its kind, accelerator and availability."""

    name: str
    kind: str
    accel: str | None = None
    available: bool = True
    reason: str | None = None

    @property
    def label(self) -> str:
        """The name, with the accelerator for VMs (every VM number carries it)."""
        if self.kind == "vm" and self.accel:
            return f"{self.name} ({self.accel})"
        return self.name


@dataclass
class Cell:
    """The measured evidence of one backend in one row."""

    backend: Backend
    text: str
    missing: str | None = None
    flags: list[str] = field(default_factory=list)
    headline: str = ""  # the one number to read first (also the terminal summary)


@dataclass
class Row:
    """One row of the textbook table with its evidence, verdict and explanation."""

    key: str
    title: str
    title_original: str
    claim_c: str
    claim_v: str
    claim_c_original: str
    claim_v_original: str
    cells: list[Cell]
    verdict: str
    verdict_label: str
    rule: str
    explanation: list[str]
    anchors: tuple[Anchor, ...]


@dataclass
class PerfPoint:
    """One backend's performance on one workload, relative to native."""

    workload: str
    backend: Backend
    ratio: Ratio
    better: str
    unit: str


@dataclass
class DensityRun:
    """How far one backend got in the density run, and what stopped it."""

    backend: Backend
    count: float | None
    stopped_by: str | None
    capped: bool
    mem_per_instance: float | None
    projection: float | None
    curve: list[tuple[float, float]]
    budget: float | None = None  # the suite's memory budget, when the harness recorded it

    @property
    def capacity(self) -> float | None:
        """Instances the host holds: measured, or projected from memory when the suite capped the run."""
        if self.count is None:
            return None
        if self.capped:
            # A capped run says nothing about the host's limit; without a projection it is unknown.
            return max(self.count, self.projection) if self.projection is not None else None
        return self.count


@dataclass
class ValueRow:
    """One line of the appendix: the statistics of one backend's metric."""

    backend: Backend
    workloads: str
    metric: str
    unit: str
    summary: Summary
    n_failed: int


@dataclass
class HostAnalysis:
    """Everything the report says about one host."""

    host: str
    runs: list[Run]
    backends: list[Backend]
    rows: list[Row]
    startup: dict[str, list[float]]
    phases: dict[str, dict[str, float]]
    disk: dict[str, tuple[float | None, float | None]]
    density: list[DensityRun]
    perf: list[PerfPoint]
    isolation: dict[str, dict[str, tuple[float | None, str]]]
    values: list[ValueRow]
    host_memory: float | None
    caveats: list[str]
    problems: list[str]
    environment: list[list[tuple[str, str]]]
    errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (backend, workload) -> failure

    def backend(self, name: str) -> Backend:
        """The Backend called `name`."""
        return next(b for b in self.backends if b.name == name)


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _order_key(b: Backend) -> tuple:
    kind_rank = {"native": 0, "container": 1, "vm": 2}.get(b.kind, 3)
    known = _ORDER.index(b.name) if b.name in _ORDER else len(_ORDER)
    return (kind_rank, known, b.name)


def _backends(frame: pd.DataFrame, runs: list[Run]) -> list[Backend]:
    found: dict[str, Backend] = {}
    for run in runs:
        for name, info in _dict(run.env.get("backends")).items():
            info = _dict(info)
            kind = info.get("kind") if info.get("kind") in ("native", "container", "vm") else None
            kind = kind or DEFAULT_KINDS.get(str(name)) or ("vm" if str(name).startswith("vm") else "unknown")
            b = found.setdefault(str(name), Backend(str(name), kind))
            if info.get("available") is False:
                b.available = False
                b.reason = str(info.get("reason") or "")
            accel = info.get("accel") or (run.accel if kind == "vm" else None)
            b.accel = b.accel or (str(accel) if accel else None)
    if len(frame):
        for name, sub in frame.groupby("backend", sort=False):
            kind = Counter(sub["kind"]).most_common(1)[0][0]
            b = found.setdefault(str(name), Backend(str(name), kind))
            b.available = True if sub["ok"].any() else b.available
            accels = Counter(a for a in sub["accel"] if isinstance(a, str) and a)
            if accels:
                b.accel = accels.most_common(1)[0][0]
    return sorted(found.values(), key=_order_key)


class _Lookup:
    """Cached summaries of (backend, metric) within one host's samples."""

    def __init__(self, frame: pd.DataFrame, lang: str, errors: dict[tuple[str, str], str] | None = None):
        self.frame = frame
        self.lang = lang
        self.errors = errors or {}
        self.groups = {key: sub for key, sub in frame.groupby(["backend", "metric"], sort=False)} if len(frame) else {}
        self._cache: dict[tuple[str, str], tuple[Summary | None, str | None, str]] = {}

    def get(self, backend: Backend, metric: str) -> tuple[Summary | None, str | None, str]:
        """(summary or None, why it is missing, base unit) for one backend's metric."""
        key = (backend.name, metric)
        if key in self._cache:
            return self._cache[key]
        sub = self.groups.get(key)
        lang = self.lang
        if sub is None or not len(sub):
            if not backend.available and backend.reason is not None:
                reason = i18n.t(lang, "reason.unavailable", reason=backend.reason or "?")
            else:
                failure = self.errors.get((backend.name, workload_of(metric)))
                reason = (i18n.t(lang, "reason.failed", metric=metric, error=failure) if failure
                          else i18n.t(lang, "reason.no_samples", metric=metric))
            out: tuple[Summary | None, str | None, str] = (None, reason, "")
        else:
            ok = sub[sub["ok"]]
            unit = Counter(ok["base_unit"]).most_common(1)[0][0] if len(ok) else str(sub["base_unit"].iloc[0])
            if not len(ok):
                errors = [e for e in sub["error"] if e]
                err = f" ({errors[0]})" if errors else ""
                out = (None, i18n.t(lang, "reason.no_ok", n=len(sub), metric=metric, error=err), unit)
            else:
                values = ok[ok["base_unit"] == unit]["base_value"].tolist()
                out = (summarize(values), None, unit)
        self._cache[key] = out
        return out

    def samples(self, backend: str, metric: str) -> pd.DataFrame:
        """The successful samples of one backend's metric."""
        sub = self.groups.get((backend, metric))
        if sub is None:
            return self.frame.iloc[0:0]
        return sub[sub["ok"]]

    def failed(self, backend: str, metric: str) -> int:
        """How many samples of one backend's metric record a failure or a non-finite value."""
        sub = self.groups.get((backend, metric))
        return 0 if sub is None else int((~sub["ok"]).sum())


def _median(s: Summary) -> float:
    """The median of a summary that has samples (NaN if it has none, which callers exclude)."""
    return float(s.median) if s.median is not None else math.nan


def describe(s: Summary, unit: str) -> str:
    """'p50 X [lo–hi] · p95 Y · n=N', the compact evidence of one summary."""
    p50 = fmt_value(s.median, unit)
    ci = ""
    if s.ci_low is not None and s.ci_high is not None:
        ci = f" [{fmt_value(s.ci_low, unit)} – {fmt_value(s.ci_high, unit)}]"
    return f"p50 {p50}{ci} · p95 {fmt_value(s.p95, unit)} · n={s.n}"


def _flags(s: Summary | None, failed: int, lang: str) -> list[str]:
    out = []
    if s is not None and s.n == 1:
        out.append(i18n.t(lang, "flag.single"))
    if s is not None and s.noisy:
        out.append(i18n.t(lang, "flag.noisy", cv=fmt_percent(s.cv)))
    if failed:
        out.append(i18n.t(lang, "flag.failed", n=failed))
    return out


def _row(key: str, lang: str, cells: list[Cell], verdict: str, explanation: list[str], **rule_params) -> Row:
    orig_c, orig_v = i18n.ORIGINAL_CLAIMS[key]
    return Row(
        key=key,
        title=i18n.t(lang, f"row.{key}"),
        title_original=i18n.ORIGINAL_ROW_NAMES[key],
        claim_c=i18n.t(lang, f"claim.{key}.c"),
        claim_v=i18n.t(lang, f"claim.{key}.v"),
        claim_c_original=orig_c,
        claim_v_original=orig_v,
        cells=cells,
        verdict=verdict,
        verdict_label=i18n.t(lang, f"verdict.{verdict}"),
        rule=i18n.t(lang, f"rule.{key}", **rule_params),
        explanation=explanation,
        anchors=ANCHORS[key],
    )


def _side_missing(lang: str, containers: list, vms: list) -> str:
    side = "container" if not containers else "vm"
    return i18n.t(lang, "reason.side_missing", side=i18n.t(lang, f"side.{side}"))


# ----------------------------------------------------------------- startup


def startup_verdict(container_p50: list[float], vm_p50: list[float]) -> str:
    """The startup rule: containers in seconds (< 10 s), VMs in minutes (>= 60 s)."""
    if not container_p50 or not vm_p50:
        return "unmeasured"
    if max(container_p50) >= STARTUP_SECONDS_MAX or min(vm_p50) <= min(container_p50):
        return "fails"
    if min(vm_p50) >= STARTUP_MINUTES_MIN:
        return "holds"
    return "nuance"


def _startup(lk: _Lookup, backends: list[Backend], lang: str) -> Row:
    cells: list[Cell] = []
    cont: list[tuple[float, Backend]] = []
    vms: list[tuple[float, Backend]] = []
    for b in backends:
        s, missing, unit = lk.get(b, "startup.ready")
        if s is None:
            cells.append(Cell(b, "", missing))
            continue
        cells.append(Cell(b, describe(s, unit), None, _flags(s, lk.failed(b.name, "startup.ready"), lang),
                          fmt_value(s.median, unit)))
        if b.kind == "container":
            cont.append((_median(s), b))
        elif b.kind == "vm":
            vms.append((_median(s), b))
    verdict = startup_verdict([c for c, _ in cont], [v for v, _ in vms])
    params = {"cmax": fmt_number(STARTUP_SECONDS_MAX), "vmin": fmt_number(STARTUP_MINUTES_MIN)}
    if verdict == "unmeasured":
        return _row("startup", lang, cells, verdict,
                    [i18n.t(lang, "x.unmeasured", reason=_side_missing(lang, cont, vms))], **params)
    c, cb = min(cont, key=lambda x: x[0])
    v, vb = min(vms, key=lambda x: x[0])
    text = [i18n.t(lang, "x.startup.c" if c < 1.0 else "x.startup.c_slow", c=fmt_seconds(c), cb=cb.label),
            i18n.t(lang, "x.startup.v", v=fmt_seconds(v), vb=vb.label, x=fmt_number(v / c if c else math.nan))]
    # The direct-kernel-boot explanation fits only the micro profile (and qemu-direct, its libvirt-free twin).
    if v < STARTUP_MINUTES_MIN and ("micro" in vb.name or vb.name == "qemu-direct"):
        text.append(i18n.t(lang, "x.startup.micro"))
    full = [(m, b) for m, b in vms if b.name == "vm-full"]
    if full:
        text.append(i18n.t(lang, "x.startup.full", fb=full[0][1].label, f=fmt_seconds(full[0][0])))
    if any(b.accel == "tcg" for _, b in vms):
        text.append(i18n.t(lang, "x.startup.tcg"))
    if verdict != "holds":
        text.append(i18n.t(lang, "x.startup.minutes"))
    return _row("startup", lang, cells, verdict, text, **params)


# ----------------------------------------------------------------- disk


def disk_verdict(container_shared: list[float], vm_shared: list[float]) -> str:
    """The disk rule: containers under 1 GB, VMs 1 GB or more."""
    if not container_shared or not vm_shared:
        return "unmeasured"
    if max(container_shared) >= DISK_GB or min(vm_shared) <= max(container_shared):
        return "fails"
    if min(vm_shared) >= DISK_GB:
        return "holds"
    return "nuance"


def _disk(lk: _Lookup, backends: list[Backend], lang: str) -> tuple[Row, dict]:
    cells: list[Cell] = []
    cont: list[tuple[float, float | None, Backend]] = []
    vms: list[tuple[float, float | None, Backend]] = []
    bars: dict[str, tuple[float | None, float | None]] = {}
    for b in backends:
        if b.kind == "native":
            continue
        shared, miss_s, _ = lk.get(b, "disk.shared_bytes")
        inst, miss_i, _ = lk.get(b, "disk.instance_bytes")
        if shared is None and inst is None:
            cells.append(Cell(b, "", miss_s))
            continue
        parts = []
        if shared is not None:
            parts.append(i18n.t(lang, "cell.shared", v=fmt_bytes(shared.median)))
        if inst is not None:
            parts.append(i18n.t(lang, "cell.instance", v=describe(inst, "bytes")))
        failed = lk.failed(b.name, "disk.shared_bytes") + lk.failed(b.name, "disk.instance_bytes")
        head = " + ".join(x for x in (fmt_bytes(shared.median) if shared else "",
                                      f"{fmt_bytes(inst.median)}/inst." if inst else "") if x)
        cells.append(Cell(b, " · ".join(parts), None, _flags(inst, failed, lang), head))
        bars[b.name] = (shared.median if shared else None, inst.median if inst else None)
        if shared is not None and b.kind in ("container", "vm"):
            (cont if b.kind == "container" else vms).append((_median(shared), inst.median if inst else None, b))
    verdict = disk_verdict([c for c, _, _ in cont], [v for v, _, _ in vms])
    if verdict == "unmeasured":
        return _row("disk", lang, cells, verdict,
                    [i18n.t(lang, "x.unmeasured", reason=_side_missing(lang, cont, vms))]), bars
    cs, ci, _ = max(cont, key=lambda x: x[0])
    vs, vi, _ = min(vms, key=lambda x: x[0])
    text = [i18n.t(lang, "x.disk.c", cs=fmt_bytes(cs), ci=fmt_bytes(ci)),
            i18n.t(lang, "x.disk.v", vs=fmt_bytes(vs), vi=fmt_bytes(vi))]
    if cs:
        text.append(i18n.t(lang, "x.disk.factor", x=fmt_number(vs / cs)))
    if vs < DISK_GB:
        text.append(i18n.t(lang, "x.disk.small"))
    return _row("disk", lang, cells, verdict, text), bars


# ----------------------------------------------------------------- performance


def _better(sub: pd.DataFrame) -> tuple[str, bool]:
    """('higher'|'lower', declared) for one perf metric, from its samples' metadata."""
    votes = Counter(str(m.get("better")) for m in sub["meta"] if m.get("better") in ("higher", "lower"))
    if votes:
        return votes.most_common(1)[0][0], True
    unit = str(Counter(sub["unit"]).most_common(1)[0][0]) if len(sub) else ""
    lower = unit.endswith("/op") or Counter(sub["base_unit"]).most_common(1)[0][0] == "s"
    return ("lower" if lower else "higher"), False


def _ratio(p: PerfPoint) -> float:
    """The ratio of a point known to have one (NaN otherwise, never chosen)."""
    return p.ratio.value if p.ratio.value is not None else math.nan


def perf_verdict(container_scores: list[float], vm_scores: list[float], vm_min_workload: list[float],
                 tcg: bool) -> str:
    """The performance rule: containers >= 90% of native, VMs below (labelled by accelerator)."""
    if not container_scores or not vm_scores:
        return "unmeasured"
    if min(container_scores) < PERF_NEAR_NATIVE:
        return "fails"
    if not vm_min_workload or min(vm_min_workload) >= PERF_NEAR_NATIVE:
        return "fails"
    if max(vm_scores) < PERF_NEAR_NATIVE and not tcg:
        return "holds"
    return "nuance"


def _performance(lk: _Lookup, frame: pd.DataFrame, backends: list[Backend], lang: str,
                 problems: list[str]) -> tuple[Row, list[PerfPoint]]:
    metrics = sorted(m for m in set(frame["metric"]) if m.startswith("perf.")) if len(frame) else []
    natives = [b for b in backends if b.kind == "native"]
    points: list[PerfPoint] = []
    for metric in metrics:
        workload = metric[len("perf."):]
        sub = frame[frame["metric"] == metric]
        better, declared = _better(sub)
        if not declared:
            problems.append(f"{metric}: metadata does not say whether higher or lower is better; "
                            f"assumed {better}")
        native = lk.samples(natives[0].name, metric) if natives else frame.iloc[0:0]
        if not len(native):
            problems.append(f"{metric}: no successful native sample, so no ratio to native")
        for b in backends:
            if b.kind == "native":
                continue
            mine = lk.samples(b.name, metric)
            if not len(mine):
                continue
            if len(native) and set(native["base_unit"]) != set(mine["base_unit"]):
                problems.append(f"{metric}: {b.name} and native use different units; no ratio")
                continue
            if better == "higher":
                r = ratio_of_medians(mine["base_value"], native["base_value"])
            else:
                r = ratio_of_medians(native["base_value"], mine["base_value"])
            points.append(PerfPoint(workload, b, r, better, str(mine["unit"].iloc[0])))
    cells: list[Cell] = []
    cont: list[tuple[float, Backend, list[PerfPoint]]] = []
    vms: list[tuple[float, Backend, list[PerfPoint]]] = []
    for b in backends:
        if b.kind == "native":
            s_any = any(lk.get(b, m)[0] is not None for m in metrics)
            cells.append(Cell(b, i18n.t(lang, "cell.baseline") if s_any else "",
                              None if s_any else i18n.t(lang, "reason.no_native", workload="perf.*"),
                              headline="1.00×" if s_any else ""))
            continue
        mine = [p for p in points if p.backend.name == b.name and p.ratio.value is not None]
        if not mine:
            have = any(len(lk.samples(b.name, m)) for m in metrics)
            reason = (i18n.t(lang, "reason.no_native", workload=", ".join(m[5:] for m in metrics)) if have
                      else lk.get(b, metrics[0] if metrics else "perf.*")[1])
            cells.append(Cell(b, "", reason))
            continue
        g = geomean(p.ratio.value for p in mine)
        if g is None:
            cells.append(Cell(b, "", i18n.t(lang, "reason.no_native", workload="perf.*")))
            continue
        worst = min(mine, key=_ratio)
        cell_text = i18n.t(lang, "cell.perf", g=fmt_ratio(g), n=len(mine), w=worst.workload,
                           r=fmt_ratio(worst.ratio.value))
        flags = [i18n.t(lang, "flag.single")] if any(p.ratio.ci_low is None for p in mine) else []
        cells.append(Cell(b, cell_text, None, flags, fmt_ratio(g)))
        if b.kind == "container":
            cont.append((g, b, mine))
        elif b.kind == "vm":
            vms.append((g, b, mine))
    tcg = any(b.accel == "tcg" for _, b, _ in vms)
    vm_min = [_ratio(min(mine, key=_ratio)) for _, _, mine in vms]
    verdict = perf_verdict([g for g, _, _ in cont], [g for g, _, _ in vms], vm_min, tcg)
    params = {"near": fmt_percent(PERF_NEAR_NATIVE)}
    if verdict == "unmeasured":
        reason = (i18n.t(lang, "reason.no_native", workload="perf.*") if not natives or not points
                  else _side_missing(lang, cont, vms))
        return _row("performance", lang, cells, verdict, [i18n.t(lang, "x.unmeasured", reason=reason)],
                    **params), points
    c, cb, cm = min(cont, key=lambda x: x[0])
    v, vb, vm = max(vms, key=lambda x: x[0])
    worst = min(vm, key=_ratio)
    text = [i18n.t(lang, "x.perf.c", c=fmt_percent(c), n=len(cm), cb=cb.label),
            i18n.t(lang, "x.perf.v", v=fmt_percent(v), vb=vb.label, accel=vb.accel or "?",
                   worst=i18n.t(lang, "x.perf.worst", w=worst.workload, r=fmt_percent(worst.ratio.value)))]
    text.append(i18n.t(lang, "x.perf.tcg" if tcg else "x.perf.kvm"))
    return _row("performance", lang, cells, verdict, text, **params), points


# ----------------------------------------------------------------- density


def is_suite_stop(stopped_by: str | None) -> bool:
    """True when `stopped_by` says the suite (a cap or budget), not a host limit, ended the run."""
    return stopped_by is not None and SUITE_STOP_WORDS.search(stopped_by) is not None


def per_instance_memory(delta: Summary | None, pss: Summary | None) -> float | None:
    """Memory per instance for the projection: the larger positive of the MemAvailable delta and PSS.

    On a shared host the MemAvailable delta can even be negative (others freed memory
    meanwhile); PSS then still bounds what the instances themselves use. Taking the larger
    keeps the projection conservative.
    """
    values = [s.median for s in (delta, pss) if s is not None and s.median is not None and s.median > 0]
    return max(values) if values else None


def density_verdict(container_cap: list[float], vm_cap: list[float], projected: bool) -> str:
    """The density rule: thousands of containers (>= 1000), dozens of VMs (< 100)."""
    if not container_cap or not vm_cap:
        return "unmeasured"
    if min(container_cap) < DENSITY_THOUSANDS or max(vm_cap) >= min(container_cap):
        return "fails"
    if max(vm_cap) < DENSITY_DOZENS_MAX and not projected:
        return "holds"
    return "nuance"


def _density(lk: _Lookup, backends: list[Backend], lang: str, host_memory: float | None
             ) -> tuple[Row, list[DensityRun]]:
    runs: list[DensityRun] = []
    cells = []
    for b in backends:
        if b.kind == "native":
            continue
        s, missing, _ = lk.get(b, "density.count")
        if s is None:
            cells.append(Cell(b, "", missing))
            continue
        ok = lk.samples(b.name, "density.count")
        stops = Counter(str(m.get("stopped_by")) for m in ok["meta"] if m.get("stopped_by"))
        stopped = stops.most_common(1)[0][0] if stops else None
        flags_declared = [m.get("capped_by_suite") for m in ok["meta"] if isinstance(m.get("capped_by_suite"), bool)]
        capped = flags_declared[0] if flags_declared else is_suite_stop(stopped)
        per = per_instance_memory(lk.get(b, "density.mem_per_instance")[0],
                                  lk.get(b, "density.pss_per_instance")[0])
        projection = math.floor(host_memory / per) if host_memory and per else None
        curve_df = lk.samples(b.name, "density.mem_used")
        curve: dict[float, list[float]] = {}
        for meta, val in zip(curve_df["meta"], curve_df["base_value"], strict=True):
            n = meta.get("n")
            if isinstance(n, int | float) and math.isfinite(n):
                curve.setdefault(float(n), []).append(float(val))
        points = sorted((n, float(pd.Series(v).median())) for n, v in curve.items())
        budgets = [m.get("memory_budget_bytes") for m in ok["meta"]]
        budget = next((float(v) for v in budgets if isinstance(v, int | float) and not isinstance(v, bool) and v > 0),
                      None)
        run = DensityRun(b, s.median, stopped, capped, per, projection, points, budget)
        runs.append(run)
        flags = _flags(s, lk.failed(b.name, "density.count"), lang)
        if run.capped:
            flags.append(i18n.t(lang, "flag.capped"))
        parts = [i18n.t(lang, "cell.count", c=fmt_number(s.median), n=s.n)]
        if stopped:
            parts.append(i18n.t(lang, "label.stopped", why=stopped))
        if per:
            parts.append(i18n.t(lang, "cell.mem", m=fmt_bytes(per)))
        if run.capped and projection is not None:
            parts.append(f"≈{fmt_number(projection)} ({i18n.t(lang, 'flag.projected')})")
        head = fmt_number(s.median)
        if run.capped and projection is not None:
            head += f" → ≈{fmt_number(projection)}"
        cells.append(Cell(b, " · ".join(parts), None, flags, head))
    cont = [r for r in runs if r.backend.kind == "container" and r.capacity is not None]
    vms = [r for r in runs if r.backend.kind == "vm" and r.capacity is not None]
    unknown = [r for r in runs if r.capacity is None and r.backend.kind in ("container", "vm")]
    projected = any(r.capped and r.projection is not None and r.projection > (r.count or 0) for r in cont + vms)
    verdict = density_verdict([c for c in (r.capacity for r in cont) if c is not None],
                              [v for v in (r.capacity for r in vms) if v is not None], projected)
    params = {"thousands": fmt_number(DENSITY_THOUSANDS), "dozens": fmt_number(DENSITY_DOZENS_MAX)}
    if verdict == "unmeasured":
        side = "container" if not cont else "vm"
        if any(r.backend.kind == side for r in unknown):
            reason = i18n.t(lang, "reason.capped_unknown", side=i18n.t(lang, f"side.{side}"))
        else:
            reason = _side_missing(lang, cont, vms)
        return _row("density", lang, cells, verdict, [i18n.t(lang, "x.unmeasured", reason=reason)], **params), runs
    c = min(cont, key=lambda r: r.capacity or 0)
    v = max(vms, key=lambda r: r.capacity or 0)
    text = [i18n.t(lang, "x.density.c", c=fmt_number(c.count), why=c.stopped_by or "?",
                   m=fmt_bytes(c.mem_per_instance)),
            i18n.t(lang, "x.density.v", v=fmt_number(v.count), why=v.stopped_by or "?",
                   m=fmt_bytes(v.mem_per_instance))]
    if c.mem_per_instance is None or v.mem_per_instance is None:
        text.append(i18n.t(lang, "x.density.nomem"))
    if host_memory and c.projection is not None and v.projection is not None:
        text.append(i18n.t(lang, "x.density.proj", mem=fmt_bytes(host_memory), pc=fmt_number(c.projection),
                           pv=fmt_number(v.projection)))
    if v.backend.accel == "tcg":
        text.append(i18n.t(lang, "x.density.tcg"))
    text.append(i18n.t(lang, "x.density.limits"))
    return _row("density", lang, cells, verdict, text, **params), runs


# ----------------------------------------------------------------- isolation


def _mechanisms(measured: Mapping[str, float], lang: str) -> str:
    """'isolated: a, b · not isolated: c' from a backend's checks."""
    def names(want: float) -> str:
        return ("、" if lang == "zh" else ", ").join(i18n.check_label(lang, c) for c, v in measured.items() if v == want)

    parts = []
    if names(1):
        parts.append(i18n.t(lang, "iso.isolated", checks=names(1)))
    if names(0):
        parts.append(i18n.t(lang, "iso.not_isolated", checks=names(0)))
    return " · ".join(parts)


def isolation_verdict(containers: Sequence[Mapping[str, float | None]],
                      vms: Sequence[Mapping[str, float | None]]) -> str:
    """The isolation rule: a failed container escape probe or any failed VM check means it does not hold."""
    if not containers or not vms:
        return "unmeasured"
    if any(c.get("escape_probes_blocked") == 0 for c in containers):
        return "fails"
    if any(v == 0 for vm in vms for v in vm.values()):
        return "fails"
    return "nuance"


def _isolation(lk: _Lookup, frame: pd.DataFrame, backends: list[Backend], lang: str
               ) -> tuple[Row, dict[str, dict[str, tuple[float | None, str]]]]:
    names = sorted({m[len("isolation."):] for m in set(frame["metric"]) if m.startswith("isolation.")}) \
        if len(frame) else []
    checks = [c for c in ISOLATION_CHECKS if c in names] + [c for c in names if c not in ISOLATION_CHECKS]
    matrix: dict[str, dict[str, tuple[float | None, str]]] = {}
    cells: list[Cell] = []
    cont: list[tuple[Backend, dict[str, float]]] = []
    vms: list[tuple[Backend, dict[str, float]]] = []
    failed_names: list[str] = []
    for b in backends:
        row: dict[str, tuple[float | None, str]] = {}
        for check in checks:
            ok = lk.samples(b.name, f"isolation.{check}")
            if not len(ok):
                row[check] = (None, "")
                continue
            value = 1.0 if float(ok["base_value"].median()) >= 0.5 else 0.0
            details = [str(m.get("detail")) for m in ok["meta"] if m.get("detail")]
            row[check] = (value, details[0] if details else "")
        measured = {c: v for c, (v, _) in row.items() if v is not None}
        if not measured:
            s_missing = lk.get(b, f"isolation.{checks[0]}")[1] if checks else i18n.t(
                lang, "reason.no_samples", metric="isolation.*")
            cells.append(Cell(b, "", s_missing))
            if checks:
                matrix[b.name] = row
            continue
        matrix[b.name] = row
        # Mechanisms, not a score (ANCHORS.md §6): say which boundaries hold and which do not.
        own_kernel = row.get("kernel_separate", (None, ""))[0]
        headline = "" if own_kernel is None else i18n.t(lang, "iso.own_kernel" if own_kernel == 1 else "iso.shared_kernel")
        others = {c: v for c, v in measured.items() if c != "kernel_separate" and v == 0}
        if others and b.kind != "native":
            headline = " · ".join(x for x in (headline, _mechanisms(others, lang)) if x)
        cells.append(Cell(b, _mechanisms(measured, lang), headline=headline))
        if b.kind == "container":
            cont.append((b, measured))
            if measured.get("escape_probes_blocked") == 0:
                failed_names.append(f"{b.label}: {i18n.t(lang, 'check.escape_probes_blocked')}")
        elif b.kind == "vm":
            vms.append((b, measured))
            failed_names.extend(f"{b.label}: {i18n.t(lang, 'check.' + c)}" for c, v in measured.items() if v == 0)
    verdict = isolation_verdict([m for _, m in cont], [m for _, m in vms])
    if verdict == "unmeasured":
        return _row("isolation", lang, cells, verdict,
                    [i18n.t(lang, "x.unmeasured", reason=_side_missing(lang, cont, vms))]), matrix
    cb, cm = min(cont, key=lambda x: sum(x[1].values()))
    vb, vm = min(vms, key=lambda x: sum(x[1].values()))
    text = [i18n.t(lang, "x.iso.c", cb=cb.label, mech=_mechanisms(cm, lang)),
            i18n.t(lang, "x.iso.v", vb=vb.label, mech=_mechanisms(vm, lang))]
    if failed_names:
        text.append(i18n.t(lang, "x.iso.failed", checks="; ".join(failed_names)))
    text.append(i18n.t(lang, "x.iso.nuance"))
    return _row("isolation", lang, cells, verdict, text), matrix


# ----------------------------------------------------------------- environment, caveats, appendix


def environment_block(run: Run, lang: str) -> list[tuple[str, str]]:
    """The environment of one run as (label, value) pairs, unknowns said plainly."""
    env = run.env
    host, acc, ver = _dict(env.get("host")), _dict(env.get("accelerator")), _dict(env.get("versions"))
    unknown = i18n.t(lang, "env.unknown")

    def val(v: object) -> str:
        return unknown if v in (None, "", [], {}) else str(v)

    mem = host.get("memory_bytes")
    memory = fmt_bytes(float(mem)) if isinstance(mem, int | float) and not isinstance(mem, bool) else val(mem)
    controllers = host.get("cgroup_controllers")
    cgroup = val(host.get("cgroup_mode"))
    if isinstance(controllers, list) and controllers:
        cgroup += " (" + ", ".join(str(c) for c in controllers) + ")"
    accel = val(acc.get("accel"))
    if acc.get("reason"):
        accel += f" — {acc.get('reason')}"
    versions = ", ".join(f"{k} {v}" for k, v in ver.items() if v) or unknown
    images = ", ".join(f"{k} @ {v}" for k, v in _dict(env.get("images")).items()) or unknown
    commit = val(env.get("git_commit"))
    if env.get("git_dirty"):
        commit += " " + i18n.t(lang, "env.dirty")
    cpu = val(host.get("cpu_model"))
    if host.get("cpu_count"):
        cpu += f" × {host.get('cpu_count')}"
    argv = env.get("argv")
    rows = [
        (i18n.t(lang, "env.run"), f"{run.run_id} ({run.path})"),
        (i18n.t(lang, "env.host"), val(host.get("hostname"))),
        (i18n.t(lang, "env.kernel"), val(host.get("kernel"))),
        (i18n.t(lang, "env.distro"), val(host.get("distro"))),
        (i18n.t(lang, "env.cpu"), cpu),
        (i18n.t(lang, "env.memory"), memory),
        (i18n.t(lang, "env.cgroup"), cgroup),
        (i18n.t(lang, "env.kvm_device"), val(host.get("kvm_device"))),
        (i18n.t(lang, "env.accel"), accel),
        (i18n.t(lang, "env.versions"), versions),
        (i18n.t(lang, "env.tool"), val(env.get("tool_version"))),
        (i18n.t(lang, "env.commit"), commit),
        (i18n.t(lang, "env.images"), images),
        (i18n.t(lang, "env.suite"), val(env.get("suite"))),
        (i18n.t(lang, "env.method"), _method(env, unknown)),
        (i18n.t(lang, "env.confounders"), _confounders(env, unknown)),
        (i18n.t(lang, "env.when"), f"{val(env.get('started'))} / {val(env.get('finished'))}"),
        (i18n.t(lang, "env.argv"), " ".join(str(a) for a in argv) if isinstance(argv, list) else val(argv)),
    ]
    return rows


def _method(env: dict, unknown: str) -> str:
    """Repetitions, warm-ups, order and seed, as the harness recorded them."""
    parts = [f"{k}={env[k]}" for k in ("repeat", "warmups", "order", "seed") if env.get(k) not in (None, "")]
    return ", ".join(parts) or unknown


def _confounders(env: dict, unknown: str) -> str:
    """The host facts that move benchmark numbers (governor, SMT, THP, ASLR, ...), each cut short."""
    conf = _dict(env.get("confounders"))
    parts = []
    for key, value in conf.items():
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:59] + '…'}")
    return "; ".join(parts) or unknown


def _caveats(runs: list[Run], backends: list[Backend], rows: list[Row], values: list[ValueRow],
             lang: str) -> list[str]:
    out = []
    vm_accels = {b.accel for b in backends if b.kind == "vm"}
    if "tcg" in vm_accels:
        reason = next((r.accel_reason for r in runs if r.accel == "tcg" and r.accel_reason), None)
        out.append(i18n.t(lang, "caveat.tcg", reason=reason or i18n.t(lang, "env.unknown")))
    elif "kvm" in vm_accels:
        out.append(i18n.t(lang, "caveat.kvm"))
    if None in vm_accels:
        out.append(i18n.t(lang, "caveat.noaccel"))
    cpus = [c for c in (_dict(r.env.get("host")).get("cpu_count") for r in runs) if isinstance(c, int)]
    if cpus and min(cpus) <= 8:
        out.append(i18n.t(lang, "caveat.shared", cpus=min(cpus)))
    ns = [v.summary.n for v in values if v.summary.n and v.metric.startswith(("startup.", "perf."))]
    if ns and min(ns) < 10:
        out.append(i18n.t(lang, "caveat.small_n", n=min(ns)))
    if any(r.env.get("suite") == "quick" for r in runs):
        out.append(i18n.t(lang, "caveat.quick"))
    if len(runs) > 1:
        commits = {str(r.env.get("git_commit")) for r in runs if r.env.get("git_commit")}
        out.append(i18n.t(lang, "caveat.pooled", n=len(runs), runs=", ".join(r.run_id for r in runs),
                          commits=len(commits)))
    out.append(i18n.t(lang, "caveat.anchors"))
    return out


def _values(frame: pd.DataFrame, lk: _Lookup, backends: list[Backend]) -> list[ValueRow]:
    out = []
    by_name = {b.name: b for b in backends}
    for (backend, metric), sub in lk.groups.items():
        b = by_name.get(str(backend))
        if b is None:
            continue
        s, _, unit = lk.get(b, str(metric))
        workloads = ", ".join(sorted({str(w) for w in sub["workload"]}))
        out.append(ValueRow(b, workloads, str(metric), unit or str(sub["unit"].iloc[0]),
                            s if s is not None else summarize([]), lk.failed(str(backend), str(metric))))
    out.sort(key=lambda v: (_order_key(v.backend), v.metric))
    return out


def analyse(results: Results, host: str, lang: str = "en") -> HostAnalysis:
    """Build the table, figures' data, caveats and environment of one host."""
    frame = results.for_host(host)
    require_single_host(frame)
    runs = results.runs_of(host)
    backends = _backends(frame, runs)
    errors = {key: msg for r in runs for key, msg in r.errors.items()}
    lk = _Lookup(frame, lang, errors)
    problems: list[str] = [f"{r.run_id}: {p}" for r in runs for p in r.problems]
    mems = [_dict(r.env.get("host")).get("memory_bytes") for r in runs]
    host_memory = next((float(m) for m in mems if isinstance(m, int | float) and not isinstance(m, bool) and m > 0),
                       None)
    startup_row = _startup(lk, backends, lang)
    disk_row, disk = _disk(lk, backends, lang)
    perf_row, perf = _performance(lk, frame, backends, lang, problems)
    density_row, density = _density(lk, backends, lang, host_memory)
    iso_row, isolation = _isolation(lk, frame, backends, lang)
    rows = [startup_row, disk_row, perf_row, density_row, iso_row]
    startup = {}
    phases: dict[str, dict[str, float]] = {}
    for b in backends:
        ok = lk.samples(b.name, "startup.ready")
        if len(ok):
            startup[b.name] = ok["base_value"].tolist()
        names = VM_PHASES if b.kind == "vm" else CONTAINER_PHASES
        extra = sorted({str(m)[len("startup.phase."):] for (bn, m) in lk.groups
                        if bn == b.name and str(m).startswith("startup.phase.")} - set(names))
        for ph in (*names, *extra):
            s, _, _ = lk.get(b, f"startup.phase.{ph}") if (b.name, f"startup.phase.{ph}") in lk.groups else (
                None, None, "")
            if s is not None:
                phases.setdefault(b.name, {})[ph] = _median(s)
    values = _values(frame, lk, backends)
    return HostAnalysis(
        host=host, runs=runs, backends=backends, rows=rows, startup=startup, phases=phases, disk=disk,
        density=density, perf=perf, isolation=isolation, values=values, host_memory=host_memory,
        caveats=_caveats(runs, backends, rows, values, lang), problems=problems,
        environment=[environment_block(r, lang) for r in runs], errors=errors,
    )
