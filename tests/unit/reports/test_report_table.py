"""The five rows: explicit verdict rules, evidence per backend, and honest gaps."""

from __future__ import annotations

import json
import re

import pytest
import resultgen

from reports import table
from reports.load import load
from reports.table import (
    analyse,
    density_verdict,
    disk_verdict,
    is_suite_stop,
    isolation_verdict,
    perf_verdict,
    startup_verdict,
)

DIGITS = re.compile(r"\d")


def rows_of(an):
    return {r.key: r for r in an.rows}


def cell(row, backend):
    return next(c for c in row.cells if c.backend.name == backend)


@pytest.mark.parametrize(
    ("containers", "vms", "expected"),
    [
        ([0.1], [120.0, 300.0], "holds"),
        ([0.1, 0.4], [2.4, 28.0], "nuance"),  # a micro VM boots in seconds, not minutes
        ([12.0], [120.0], "fails"),  # containers not "in seconds"
        ([3.0], [2.0], "fails"),  # a VM as fast as a container
        ([], [2.0], "unmeasured"),
        ([0.1], [], "unmeasured"),
    ],
)
def test_startup_rule(containers, vms, expected):
    assert startup_verdict(containers, vms) == expected


@pytest.mark.parametrize(
    ("containers", "vms", "expected"),
    [
        ([5e6], [2e9], "holds"),
        ([5e6], [6.5e7, 1.4e9], "nuance"),
        ([2e9], [3e9], "fails"),
        ([5e6], [4e6], "fails"),
        ([], [1e9], "unmeasured"),
    ],
)
def test_disk_rule(containers, vms, expected):
    assert disk_verdict(containers, vms) == expected


@pytest.mark.parametrize(
    ("containers", "vms", "vm_min", "tcg", "expected"),
    [
        ([0.97], [0.6], [0.5], False, "holds"),
        ([0.97], [0.2], [0.1], True, "nuance"),  # the gap is TCG's
        ([0.97], [0.95], [0.7], False, "nuance"),  # weaker on some workloads only
        ([0.97], [0.98], [0.95], False, "fails"),  # VMs as good as native
        ([0.8], [0.5], [0.4], False, "fails"),  # containers not near native
        ([], [0.5], [0.4], False, "unmeasured"),
    ],
)
def test_performance_rule(containers, vms, vm_min, tcg, expected):
    assert perf_verdict(containers, vms, vm_min, tcg) == expected


@pytest.mark.parametrize(
    ("containers", "vms", "projected", "expected"),
    [
        ([2500.0], [40.0], False, "holds"),
        ([20000.0], [128.0], True, "nuance"),
        ([2500.0], [150.0], False, "nuance"),
        ([600.0], [40.0], False, "fails"),
        ([1500.0], [1500.0], False, "fails"),
        ([], [40.0], False, "unmeasured"),
    ],
)
def test_density_rule(containers, vms, projected, expected):
    assert density_verdict(containers, vms, projected) == expected


def test_suite_stops_are_told_apart_from_host_limits():
    assert is_suite_stop("suite cap (--density-max 200)")
    assert is_suite_stop("memory budget (5 GB)")
    assert not is_suite_stop("pid_max reached (32768)")
    assert not is_suite_stop("bridge: exchange full (1024 ports)")
    assert not is_suite_stop(None)


def test_isolation_rule():
    c_ok = {"kernel_separate": 0, "escape_probes_blocked": 1}
    vm_ok = {"kernel_separate": 1, "escape_probes_blocked": 1}
    assert isolation_verdict([c_ok], [vm_ok]) == "nuance"
    assert isolation_verdict([{"escape_probes_blocked": 0}], [vm_ok]) == "fails"
    assert isolation_verdict([c_ok], [{"kernel_separate": 1, "host_pids_hidden": 0}]) == "fails"
    assert isolation_verdict([], [vm_ok]) == "unmeasured"


def test_quick_suite_on_a_tcg_host(make_run):
    res = load([make_run()])
    an = analyse(res, "lab1", "en")
    rows = rows_of(an)
    assert [r.key for r in an.rows] == list(table.ROWS)
    assert {k: r.verdict for k, r in rows.items()} == {
        "startup": "nuance", "disk": "nuance", "performance": "nuance", "density": "nuance", "isolation": "nuance"}
    startup = rows["startup"]
    assert cell(startup, "vm-micro").backend.label == "vm-micro (tcg)"
    assert "TCG" in " ".join(startup.explanation)
    assert "seconds, not minutes" in " ".join(startup.explanation)
    assert startup.claim_c_original == "秒级" and startup.claim_v_original == "分钟级"
    assert startup.anchors and all(a.source for a in startup.anchors)
    perf = rows["performance"]
    assert cell(perf, "vm-full").headline.endswith("×")
    assert "TCG" in " ".join(perf.explanation)
    density = rows["density"]
    assert "capped by the suite" in cell(density, "container").flags
    assert "not measured" not in cell(density, "container").text
    assert cell(density, "podman").missing == "no samples of density.count"
    assert any("TCG" in c for c in an.caveats)
    assert any("2 CPU" in c for c in an.caveats)
    # every VM number carries its accelerator
    assert all(p.backend.accel == "tcg" for p in an.perf if p.backend.kind == "vm")


def test_kvm_host_with_a_near_native_vm(make_run, tmp_path):
    path = make_run(accel="kvm", only_rows=("perf",))
    lines = resultgen.sample_lines(path)
    # replace vm results by near-native ones: no workload below 90%
    out = [lines[0]]
    for line in lines[1:]:
        if ",vm-" in line:
            continue
        out.append(line)
        if line.split(",")[1] == "container":
            out.append(line.replace(",container,", ",vm-micro,"))
    resultgen.write_sample_lines(path, out)
    an = analyse(load([path]), "lab1", "en")
    perf = rows_of(an)["performance"]
    assert perf.verdict in ("fails", "nuance")
    assert "KVM" in " ".join(perf.explanation)
    assert all(p.backend.accel == "kvm" for p in an.perf if p.backend.kind == "vm")


def test_one_repetition_is_flagged_not_hidden(make_run):
    an = analyse(load([make_run(reps=1)]), "lab1", "en")
    c = cell(rows_of(an)["startup"], "container")
    assert "1 sample: no spread, no CI" in c.flags
    assert "[" not in c.text  # no interval is printed for one sample
    assert rows_of(an)["startup"].verdict == "nuance"


def test_zero_successful_samples_say_not_measured_and_why(make_run):
    an = analyse(load([make_run(zero_ok_row="startup")]), "lab1", "en")
    c = cell(rows_of(an)["startup"], "vm-full")
    assert c.missing.startswith("8 sample(s) of startup.ready, none successful")
    assert "timeout after 180 s" in c.missing
    assert c.text == "" and c.headline == ""
    assert "vm-full" not in an.startup  # and nothing is drawn for it


def test_rows_without_data_are_unmeasured_without_numbers(make_run):
    an = analyse(load([make_run(only_rows=("startup",))]), "lab1", "en")
    rows = rows_of(an)
    assert rows["startup"].verdict == "nuance"
    for key in ("disk", "performance", "density", "isolation"):
        row = rows[key]
        assert row.verdict == "unmeasured", key
        assert row.verdict_label == "not measured"
        assert row.explanation[0].startswith("This row cannot be judged")
        for c in row.cells:
            assert c.missing and not DIGITS.search(c.text), (key, c)


def test_container_side_missing_names_the_side(make_run):
    an = analyse(load([make_run(backends=("native", "vm-micro"))]), "lab1", "en")
    startup = rows_of(an)["startup"]
    assert startup.verdict == "unmeasured"
    assert "no container backend has data" in startup.explanation[0]


def test_unavailable_backend_shows_its_reason(make_run):
    path = make_run(unavailable={"runc": "runc: not installed"})
    an = analyse(load([path]), "lab1", "en")
    c = cell(rows_of(an)["startup"], "runc")
    assert c.missing == "backend not available: runc: not installed"


def test_failed_escape_probe_means_it_does_not_hold(make_run):
    path = make_run(only_rows=("isolation",))
    lines = resultgen.sample_lines(path)
    out = []
    for line in lines:
        if ",container,isolation,isolation.escape_probes_blocked," in line:
            line = line.replace(",1.0,bool,", ",0.0,bool,")
        out.append(line)
    resultgen.write_sample_lines(path, out)
    an = analyse(load([path]), "lab1", "en")
    iso = rows_of(an)["isolation"]
    assert iso.verdict == "fails"
    assert "escape probes blocked" in " ".join(iso.explanation)
    assert an.isolation["container"]["escape_probes_blocked"][0] == 0


def test_real_host_limit_is_reported_as_such(make_run):
    path = make_run(only_rows=("density",))
    lines = resultgen.sample_lines(path)
    out = []
    for line in lines:
        if ",container,density,density.count," in line:
            meta = json.dumps({"stopped_by": "pid_max reached (32768)"}).replace('"', '""')
            parts = line.split(",")
            line = ",".join(parts[:4] + ["1850.0", "instances", "0", f'"{meta}"', parts[-1]])
        out.append(line)
    resultgen.write_sample_lines(path, out)
    an = analyse(load([path]), "lab1", "en")
    run = next(r for r in an.density if r.backend.name == "container")
    assert run.count == 1850 and not run.capped and run.capacity == 1850
    assert run.stopped_by == "pid_max reached (32768)"
    assert "pid_max reached" in cell(rows_of(an)["density"], "container").text


def test_ratios_are_computed_per_host(make_run):
    a = make_run("a", hostname="fast", scale=1.0, seed=1)
    b = make_run("b", hostname="slow", scale=3.0, seed=2)
    res = load([a, b])
    fast, slow = analyse(res, "fast"), analyse(res, "slow")
    f = cell(rows_of(fast)["startup"], "container").headline
    s = cell(rows_of(slow)["startup"], "container").headline
    assert f != s
    assert {p.backend.name for p in fast.perf} == {"container", "podman", "vm-micro", "vm-full"}
    assert all(0 < p.ratio.value < 1.5 for p in fast.perf + slow.perf)


def test_chinese_analysis_uses_the_textbook_wording(make_run):
    an = analyse(load([make_run()]), "lab1", "zh")
    rows = rows_of(an)
    assert rows["startup"].claim_c == "秒级" and rows["startup"].claim_v == "分钟级"
    assert rows["density"].claim_c == "单机支持上千个容器"
    assert rows["startup"].verdict_label == "基本成立，但有前提"
    assert "TCG" in " ".join(rows["startup"].explanation)
    assert any("容器" in p for p in rows["startup"].explanation)


def _rewrite_density(path, backend, count, meta, per=None, pss=None):
    """Replace one backend's density samples by the given count/metadata and per-instance memory."""
    lines = resultgen.sample_lines(path)
    out = [line for line in lines if f",{backend},density," not in line]

    def row(metric, value, unit, m):
        m = json.dumps(m).replace('"', '""')
        return f'x,{backend},density,{metric},{value},{unit},0,"{m}",2026-11-28T06:00:00Z'

    out.append(row("density.count", count, "instances", meta))
    if per is not None:
        out.append(row("density.mem_per_instance", per, "bytes", {"n": count}))
    if pss is not None:
        out.append(row("density.pss_per_instance", pss, "bytes", {"n": count}))
    resultgen.write_sample_lines(path, out)


def test_negative_memavailable_delta_falls_back_to_pss(make_run):
    path = make_run(only_rows=("density",))
    _rewrite_density(path, "container", 20, {"stopped_by": "suite cap (20)", "capped_by_suite": True},
                     per=-339558.4, pss=206233.6)
    an = analyse(load([path]), "lab1", "en")
    run = next(r for r in an.density if r.backend.name == "container")
    assert run.mem_per_instance == pytest.approx(206233.6)
    assert run.projection == int(25_769_803_776 // 206233.6)
    assert cell(rows_of(an)["density"], "container").headline.startswith("20 → ≈")


def test_capped_run_without_memory_cannot_be_judged(make_run):
    path = make_run(only_rows=("density",))
    _rewrite_density(path, "container", 20, {"stopped_by": "suite cap (20)", "capped_by_suite": True}, per=-5.0)
    row = rows_of(analyse(load([path]), "lab1", "en"))["density"]
    assert row.verdict == "unmeasured"
    assert "capped the container runs and their memory per instance is unknown" in row.explanation[0]


def test_the_harness_flag_wins_over_the_wording(make_run):
    path = make_run(only_rows=("density",))
    _rewrite_density(path, "vm-micro", 60, {"stopped_by": "memory budget (50% of MemAvailable at start)",
                                            "capped_by_suite": False}, per=2.0e8)
    an = analyse(load([path]), "lab1", "en")
    run = next(r for r in an.density if r.backend.name == "vm-micro")
    assert not run.capped and run.capacity == 60
    assert rows_of(an)["density"].verdict == "nuance"  # containers needed a projection


def test_slow_containers_get_an_honest_explanation(make_run):
    an = analyse(load([make_run(backends=("container", "vm-full"), only_rows=("startup",), scale=20.0)]), "lab1")
    startup = rows_of(an)["startup"]
    assert "faster still" not in startup.explanation[0]
    assert "within the textbook's “seconds”, but slower" in startup.explanation[0]


def test_runs_of_one_host_are_pooled_and_say_so(make_run):
    a = make_run("a", reps=4, seed=1)
    b = make_run("b", reps=6, seed=2)
    an = analyse(load([a, b]), "lab1")
    c = cell(rows_of(an)["startup"], "container")
    assert "n=10" in c.text
    assert any("samples of 2 runs on this host are pooled (a, b" in x for x in an.caveats)
    assert len(an.environment) == 2


def test_failures_recorded_by_the_harness_explain_missing_cells(make_run):
    path = make_run(only_rows=("startup", "perf"))
    lines = resultgen.sample_lines(path)
    lines = [line for line in lines if not (",vm-micro," in line and ",perf.memory," in line)]
    lines = [line for line in lines if not (",vm-full," in line and ",startup." in line)]
    resultgen.write_sample_lines(path, lines)
    env = json.loads((path / "environment.json").read_text())
    env["errors"] = [
        {"backend": "vm-micro", "workload": "memory",
         "error": "memory on vm-micro: `/usr/bin/virtlab-probe mem 32 4` exited 137: Killed"},
        {"backend": "vm-full", "workload": "boot", "error": "no VIRTLAB_READY within 180 s"},
        "not a dict",
    ]
    (path / "environment.json").write_text(json.dumps(env))
    res = load([path])
    assert "memory on vm-micro: `/usr/bin/virtlab-probe mem 32 4` exited 137: Killed" in res.runs[0].problems
    assert "boot on vm-full failed: no VIRTLAB_READY within 180 s" in res.runs[0].problems
    an = analyse(res, "lab1")
    assert cell(rows_of(an)["startup"], "vm-full").missing == \
        "no samples of startup.ready: no VIRTLAB_READY within 180 s"
    assert an.errors[("vm-micro", "memory")].endswith("exited 137: Killed")
    from reports.render import _perf_table

    _, _, cells = _perf_table(an)
    assert cells[("memory", "vm-micro")].startswith("failed: memory on vm-micro")
