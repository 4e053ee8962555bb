"""The runner end to end on the native backend: real processes, real probe, no root needed."""

import json
import math

import pytest

from bench import suites
from bench.errors import ConfigError
from bench.results import read_environment, read_samples
from bench.runner import Runner


def small_suite(**kw):
    s = suites.get("quick")
    s.backends = ("native",)
    s.workloads = ("boot", "cpu", "syscall", "density", "isolation")
    s.repeat = 3
    s.warmups = 1
    s.params["boot"]["repeat"] = 4
    s.params["cpu"]["events"] = 10
    s.params["syscall"]["calls"] = 1000
    s.params["density"]["cap"] = 3
    s.params["density"]["settle_s"] = 0.1
    for k, v in kw.items():
        setattr(s, k, v)
    return s


@pytest.fixture()
def run_dir(tmp_path):
    runner = Runner(small_suite(), tmp_path / "root", tmp_path / "results", run_id="t1", progress=False)
    outcome = runner.run()
    assert outcome.errors == []
    return outcome.run_dir


def test_native_run_writes_the_contract(run_dir):
    env = read_environment(run_dir)
    assert env["incomplete"] is False and env["interrupted"] is False
    assert env["run_id"] == "t1" and env["schema"] == 1 and env["suite"] == "quick"
    for key in ("tool_version", "git_commit", "git_dirty", "started", "finished", "argv", "host", "accelerator",
                "versions", "images", "backends", "seed"):
        assert key in env, key
    for key in ("hostname", "kernel", "distro", "cpu_model", "cpu_count", "memory_bytes", "cgroup_mode",
                "cgroup_controllers", "kvm_device"):
        assert key in env["host"], key
    assert env["backends"]["native"]["available"] is True
    samples = read_samples(run_dir)
    metrics = {(s.workload, s.metric) for s in samples}
    assert ("boot", "startup.ready") in metrics
    assert ("cpu", "perf.cpu") in metrics
    assert ("density", "density.count") in metrics
    assert ("isolation", "isolation.kernel_separate") in metrics
    boots = [s for s in samples if s.metric == "startup.ready"]
    assert sorted(s.repetition for s in boots) == [0, 1, 2, 3]  # the warm-up is not recorded
    assert all(0 < s.value < 5 for s in boots)
    assert all("outlier" in s.metadata for s in boots)
    cpu = [s for s in samples if s.metric == "perf.cpu"]
    assert len(cpu) == 3 and all(s.metadata["better"] == "higher" and s.unit == "events/s" for s in cpu)
    count = next(s for s in samples if s.metric == "density.count")
    assert count.value == 3 and count.metadata["capped_by_suite"] is True
    iso = {s.metric: s.value for s in samples if s.workload == "isolation"}
    assert iso["isolation.kernel_separate"] == 0 and iso["isolation.host_pids_hidden"] == 0
    summary = json.loads((run_dir / "raw" / "summary.json").read_text())
    row = next(r for r in summary if r["metric"] == "startup.ready")
    assert row["n"] == 4 and row["ci_low"] <= row["median"] <= row["ci_high"]
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in summary for v in r.values())


def test_unknown_names_are_config_errors(tmp_path):
    s = small_suite(backends=("native", "xen"))
    with pytest.raises(ConfigError, match="unknown backend"):
        Runner(s, tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="unknown suite"):
        suites.get("huge")
    with pytest.raises(ConfigError, match="at least 1"):
        Runner(small_suite(repeat=0), tmp_path, tmp_path)


def test_an_unavailable_backend_is_recorded_with_its_reason(tmp_path, monkeypatch):
    # The runner's bookkeeping is under test here, not runc: make runc say it is missing.
    monkeypatch.setattr("bench.backends.runc.RuncBackend.available",
                        lambda self: (False, "runc is not installed (apt-get install runc)"))
    s = small_suite(backends=("native", "runc"), workloads=("boot",))
    outcome = Runner(s, tmp_path / "root", tmp_path / "out", run_id="u", progress=False).run()
    env = read_environment(outcome.run_dir)
    assert env["backends"]["runc"]["available"] is False
    assert "runc is not installed" in env["backends"]["runc"]["reason"]
    assert {s.backend for s in read_samples(outcome.run_dir)} == {"native"}


def test_a_failing_workload_is_recorded_as_nan_with_its_error(tmp_path):
    s = small_suite(workloads=("boot", "cpu"))
    s.params["cpu"]["events"] = -5  # the probe refuses it: exit 2
    outcome = Runner(s, tmp_path / "root", tmp_path / "out", run_id="f", progress=False).run()
    assert [e["workload"] for e in outcome.errors] == ["cpu"]
    samples = read_samples(outcome.run_dir)
    bad = [x for x in samples if x.workload == "cpu"]
    assert len(bad) == 1 and math.isnan(bad[0].value) and bad[0].unit == "events/s"
    assert "exited 2" in bad[0].metadata["error"]
    assert bad[0].metadata["better"] == "higher" and bad[0].metadata["warmup"] is True
    assert [x for x in samples if x.metric == "startup.ready"]  # the other workload still ran
    env = read_environment(outcome.run_dir)
    assert env["incomplete"] is False and env["errors"][0]["backend"] == "native"
    assert (outcome.run_dir / "raw" / "errors.log").read_text().count("cpu") >= 1


def test_perf_workloads_share_one_instance_and_density_starts_empty(tmp_path, monkeypatch):
    from bench.backends.native import NativeBackend

    launched = []
    real = NativeBackend.launch

    def counting(self, spec):
        inst = real(self, spec)
        launched.append((spec.argv[-1], len(self.live())))
        return inst

    monkeypatch.setattr(NativeBackend, "launch", counting)
    s = small_suite(workloads=("cpu", "syscall", "density"))
    Runner(s, tmp_path / "root", tmp_path / "out", run_id="p", progress=False).run()
    # one shared instance for cpu and syscall, then density launches from zero live instances
    assert launched[0] == ("ready", 1)
    assert launched[1] == ("ready", 1)
    assert len(launched) == 1 + 3
