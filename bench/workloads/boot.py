"""boot: request -> ready marker of a no-op instance (the probe's `ready`), with its phases."""

from __future__ import annotations

from typing import Any

from bench.backends.base import Backend, LaunchSpec
from bench.probe import IN_IMAGE
from bench.sample import Sample
from bench.workloads.base import Context, Workload


class Boot(Workload):
    """Launch, wait for the marker, destroy: one sample of startup.ready and one per phase."""

    name = "boot"
    mode = "repeated"
    retry_after_failure = True
    description = "request -> ready marker seen from the host, and the phases"

    def failure_metrics(self) -> list[tuple[str, str]]:
        """A failed boot is a missing startup.ready."""
        return [("startup.ready", "s")]

    def measure(self, backend: Backend, state: Any, ctx: Context, repetition: int) -> list[Sample]:
        """One cold launch of `virtlab-probe ready`."""
        timeout = float(ctx.param("boot", "ready_timeout", 180.0))
        inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=timeout))
        try:
            ready = inst.startup
            phases = dict(inst.phases)
            meta = dict(inst.metadata)
        finally:
            inst.destroy()
        assert ready is not None
        samples = [ctx.sample(backend, self.name, "startup.ready", ready, "s", repetition,
                              marker="VIRTLAB_READY", seen_by="host", **meta)]
        for phase, secs in phases.items():
            samples.append(ctx.sample(backend, self.name, f"startup.phase.{phase}", secs, "s", repetition))
        return samples
