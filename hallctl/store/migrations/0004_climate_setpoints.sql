-- Schema 4: a climate zone's mode and target set at run time (climate.set from Home
-- Assistant, HVAC automation or the API) outlive a restart; the config's values are
-- only the defaults of a zone that was never set.
CREATE TABLE climate_setpoints (
    zone TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    target REAL NOT NULL,
    updated_at TEXT NOT NULL
);
