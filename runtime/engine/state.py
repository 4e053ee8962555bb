"""The container state machine: statuses and which verbs each allows (as youki's ContainerStatus)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """docker's container statuses."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"

    def __str__(self) -> str:
        return self.value

    def can_start(self) -> bool:
        """created or exited containers start."""
        return self in (Status.CREATED, Status.EXITED)

    def can_stop(self) -> bool:
        """Anything with (or about to have) a process stops."""
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def can_kill(self) -> bool:
        """Signals go to running (or paused) containers."""
        return self in (Status.RUNNING, Status.PAUSED)

    def can_pause(self) -> bool:
        """Only a running container freezes."""
        return self is Status.RUNNING

    def can_unpause(self) -> bool:
        """Only a paused container thaws."""
        return self is Status.PAUSED

    def can_remove(self) -> bool:
        """Without --force, only containers without processes are removed."""
        return self in (Status.CREATED, Status.EXITED, Status.DEAD)

    def can_exec(self) -> bool:
        """exec needs a running (not paused) PID 1."""
        return self is Status.RUNNING
