-- Schema 2: every topic hallctl has published retained (state topics and Home
-- Assistant discovery configs), so that after a config change the daemon can
-- clear the topics of removed windows, categories, devices, sensors and zones
-- with an empty retained message instead of leaving ghosts on the broker.
CREATE TABLE mqtt_retained (
    topic TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    published_at TEXT NOT NULL
);
