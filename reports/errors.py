"""The errors of reports/: one root, ReportError, with a docker-style exit code.

ReportError (exit_code 125)
 +-- ResultsNotFound      a path given is not a results directory
 +-- BadResults           samples.csv or environment.json cannot be read or lacks columns/keys
 +-- HostMixError         numbers from different hosts were about to meet in one ratio
 +-- RenderError          an output file could not be written
"""

from __future__ import annotations


class ReportError(Exception):
    """Root of every error raised by reports/."""

    exit_code = 125


class ResultsNotFound(ReportError):
    """A path given on the command line holds no results directory."""


class BadResults(ReportError):
    """A results directory exists but its files do not follow the results format."""


class HostMixError(ReportError):
    """A ratio or comparison was asked to mix samples from different hosts."""


class RenderError(ReportError):
    """The report could not be written where it was asked to go."""
