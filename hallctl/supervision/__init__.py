"""Supervision (电子监察): overdue waits and services become alerts; alerts are remembered."""

from hallctl.supervision.alerts import Supervision

__all__ = ["Supervision"]
