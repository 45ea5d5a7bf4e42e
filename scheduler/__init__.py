"""Time-driven work. Jobs take ids, open their own session and are idempotent, so a job
that runs twice, or late after a restart, does no harm."""

from scheduler.clock import Clock

__all__ = ["Clock"]
