-- Schema 6: sensor history is kept per sensor per minute (count, min/avg/max/last of each
-- quantity) instead of one row per reading: 500 readings/s were one fsynced row each, and a
-- year of 5-second Modbus readings was ~6 million rows per sensor. The minute start is the
-- key (UTC ISO text, 'YYYY-MM-DDTHH:MM:00+00:00'); a minute written twice (a flush at stop,
-- then more readings of the same minute after a restart) is merged by the store's upsert.
CREATE TABLE sensor_minutes (
    sensor TEXT NOT NULL,
    minute TEXT NOT NULL,
    count INTEGER NOT NULL,
    temperature_count INTEGER NOT NULL DEFAULT 0,
    temperature_min REAL,
    temperature_avg REAL,
    temperature_max REAL,
    temperature_last REAL,
    humidity_count INTEGER NOT NULL DEFAULT 0,
    humidity_min REAL,
    humidity_avg REAL,
    humidity_max REAL,
    humidity_last REAL,
    PRIMARY KEY (sensor, minute)
) WITHOUT ROWID;
CREATE INDEX sensor_minutes_minute ON sensor_minutes (minute);

-- The old per-reading rows become minutes (their `at` is the service's UTC isoformat, so the
-- first 16 characters are the minute), then the old table goes: history reads one table.
INSERT INTO sensor_minutes (
    sensor, minute, count,
    temperature_count, temperature_min, temperature_avg, temperature_max, temperature_last,
    humidity_count, humidity_min, humidity_avg, humidity_max, humidity_last
)
SELECT
    g.sensor, g.m || ':00+00:00', g.n,
    g.tn, g.tmin, g.tavg, g.tmax,
    (SELECT r.temperature FROM sensor_readings r WHERE r.sensor = g.sensor AND r.at >= g.m || ':'
        AND r.at < g.m || ';' AND r.temperature IS NOT NULL ORDER BY r.at DESC LIMIT 1),
    g.hn, g.hmin, g.havg, g.hmax,
    (SELECT r.humidity FROM sensor_readings r WHERE r.sensor = g.sensor AND r.at >= g.m || ':'
        AND r.at < g.m || ';' AND r.humidity IS NOT NULL ORDER BY r.at DESC LIMIT 1)
FROM (
    SELECT sensor, substr(at, 1, 16) AS m, COUNT(*) AS n,
        COUNT(temperature) AS tn, MIN(temperature) AS tmin, AVG(temperature) AS tavg, MAX(temperature) AS tmax,
        COUNT(humidity) AS hn, MIN(humidity) AS hmin, AVG(humidity) AS havg, MAX(humidity) AS hmax
    FROM sensor_readings GROUP BY sensor, substr(at, 1, 16)
) g;

DROP TABLE sensor_readings;
