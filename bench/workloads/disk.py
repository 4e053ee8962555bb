"""disk: bytes shared by every instance (image, or kernel + initrd + base disk) vs bytes each one adds."""

from __future__ import annotations

import time

from bench.backends.base import Backend, LaunchSpec
from bench.probe import IN_IMAGE
from bench.sample import Sample
from bench.workloads.base import Context, Workload


class Disk(Workload):
    """Shared bytes from prepare(); per-instance bytes after an idle instance reached ready."""

    name = "disk"
    mode = "once"
    kinds = ("container", "vm")
    description = "shared image bytes and bytes added per instance"

    def failure_metrics(self) -> list[tuple[str, str]]:
        """Both disk metrics."""
        return [("disk.shared_bytes", "bytes"), ("disk.instance_bytes", "bytes")]

    def run_once(self, backend: Backend, ctx: Context) -> list[Sample]:
        """Measure one idle instance of the backend."""
        prepared = backend.prepared
        assert prepared is not None
        samples = [ctx.sample(backend, self.name, "disk.shared_bytes", prepared.shared_bytes, "bytes",
                              parts=prepared.parts, image=prepared.image, digest=prepared.digest)]
        inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=float(ctx.param("boot", "ready_timeout", 180.0))))
        try:
            time.sleep(float(ctx.param("disk", "settle_s", 0.5)))
            used = inst.disk_usage()
        finally:
            inst.destroy()
        samples.append(ctx.sample(backend, self.name, "disk.instance_bytes", used, "bytes",
                                  state="idle after ready", method="allocated blocks (st_blocks) of the per-instance layer"))
        return samples
