"""Errors of the benchmark harness.

Every error the harness raises derives from BenchError, which carries the docker-style
exit code 125 (an error of virtlab itself)::

    BenchError (exit_code 125)
    ├── ConfigError          bad suite, backend, workload or option value
    ├── BackendUnavailable   a backend cannot run on this host (with the reason)
    ├── ProbeError           the probe payload could not be built, or printed nonsense
    ├── LaunchError          an instance could not be created or started
    │   └── ReadyTimeout     an instance did not print its ready marker in time
    ├── WorkloadError        a workload failed inside an instance
    ├── ResultsError         a results directory could not be written or read
    └── Interrupted          the run was stopped by a signal (exit_code 130)
"""

from __future__ import annotations


class BenchError(Exception):
    """Root of the harness' errors; exit code 125 like docker's own errors."""

    exit_code = 125


class ConfigError(BenchError):
    """A suite, backend, workload or option that does not exist or does not fit."""


class BackendUnavailable(BenchError):
    """A backend that cannot run here; the message says why."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"backend {backend} is not available: {reason}")
        self.backend = backend
        self.reason = reason


class ProbeError(BenchError):
    """The probe payload failed to build, or its output could not be parsed."""


class LaunchError(BenchError):
    """An instance of a backend could not be created or started."""


class ReadyTimeout(LaunchError):
    """An instance did not announce readiness before the deadline."""


class WorkloadError(BenchError):
    """A workload failed inside an instance (non-zero exit, unparsable output)."""


class ResultsError(BenchError):
    """A results directory could not be written or read."""


class Interrupted(BenchError):
    """The run was stopped by SIGINT or SIGTERM; results are marked incomplete."""

    exit_code = 130
