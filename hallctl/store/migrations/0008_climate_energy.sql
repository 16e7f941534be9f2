-- Schema 9: each climate zone's energy and comfort totals of a business day (hallctl/climate/energy.py),
-- saved as they grow so a restart continues today's kWh, run-hours and comfort instead of starting
-- at zero (Home Assistant's Energy dashboard would read a drop as a meter reset).
CREATE TABLE climate_energy (
    day TEXT NOT NULL,
    zone TEXT NOT NULL,
    run_cool_s REAL NOT NULL DEFAULT 0,
    run_heat_s REAL NOT NULL DEFAULT 0,
    run_dry_s REAL NOT NULL DEFAULT 0,
    run_fan_s REAL NOT NULL DEFAULT 0,
    kwh REAL NOT NULL DEFAULT 0,
    open_s REAL NOT NULL DEFAULT 0,
    in_band_s REAL NOT NULL DEFAULT 0,
    degree_hours REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (day, zone)
);
