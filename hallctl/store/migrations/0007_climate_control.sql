-- Schema 8: the climate controller's memory that must outlive a restart (issue 13): a zone's
-- manual override with its expiry, and the warm-up/cool-down rates it learned from its own
-- runs (pre-conditioning starts from them). Numbered 8: 6 and 7 were taken the same week.
CREATE TABLE climate_overrides (
    zone TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    target REAL,
    until TEXT,
    set_at TEXT NOT NULL
);

CREATE TABLE climate_rates (
    zone TEXT PRIMARY KEY,
    warmup_c_per_h REAL NOT NULL,
    cooldown_c_per_h REAL NOT NULL,
    warmup_samples INTEGER NOT NULL,
    cooldown_samples INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
