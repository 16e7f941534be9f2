"""The hall's retention policy in one place: the daemon's hourly pass and ``hallctl purge`` run the same list.

Before this module the daemon and the CLI each listed what to delete, and the CLI's list had
lost the audit log (docs/admin.md promised it). A new kind of record with a retention period
is added here once, and both paths enforce it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from hallctl.config import Config
from hallctl.store import Store


@dataclasses.dataclass(frozen=True)
class Purged:
    """What one retention pass deleted."""

    personal: int  # tickets whose holder data (name, ID number, address…) went: [privacy] retention_days
    audit: int  # audit rows: [admin] audit_retention_days (floor 183)
    alerts: int  # resolved supervision alerts: [supervision] keep_days (floor 365)
    cases: int  # closed evaluation cases: the same
    sensor_minutes: int  # per-minute sensor history: [sensors] history_days

    def lines(self, cfg: Config) -> list[str]:
        """The pass in words, one line per policy (what ``hallctl purge`` prints)."""
        return [
            f"purged personal data of {self.personal} tickets older than {cfg.privacy.retention_days} days",
            f"deleted {self.audit} audit rows older than {cfg.admin.audit_retention_days} days",
            f"deleted {self.alerts} resolved alerts and {self.cases} closed cases older than"
            f" {cfg.supervision.keep_days} days",
            f"purged {self.sensor_minutes} sensor minutes older than {cfg.sensors.history_days} days",
        ]


async def purge(store: Store, cfg: Config, now: datetime) -> Purged:
    """Apply every retention period once (the daemon hourly, ``hallctl purge`` by hand, beside a live daemon)."""
    personal = await store.purge_personal_data(now - timedelta(days=cfg.privacy.retention_days))
    audit = await store.purge_audit(now - timedelta(days=cfg.admin.audit_retention_days), now)
    alerts, cases = await store.purge_supervision(now - timedelta(days=cfg.supervision.keep_days))
    minutes = await store.purge_sensor_minutes(now - timedelta(days=cfg.sensors.history_days))
    return Purged(personal, audit, alerts, cases, minutes)
