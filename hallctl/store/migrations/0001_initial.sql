-- Schema 1: tickets, holders (personal data, purged by retention), windows,
-- evaluations, appointments, the append-only event log, tokens, idempotency keys,
-- the MQTT outbox and sensor history.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    category TEXT NOT NULL,
    seq INTEGER NOT NULL,
    number TEXT NOT NULL,
    priority TEXT NOT NULL,
    priority_reason TEXT,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    sort_at TEXT NOT NULL,
    appointment_slot TEXT,
    appointment_code TEXT,
    called_at TEXT,
    first_called_at TEXT,
    serving_at TEXT,
    finished_at TEXT,
    window INTEGER,
    staff TEXT,
    recalls INTEGER NOT NULL DEFAULT 0,
    target_window INTEGER,
    origin_id TEXT,
    holder_masked TEXT,
    id_hash TEXT,
    kiosk TEXT,
    end_reason TEXT,
    UNIQUE (day, category, seq)
);
CREATE INDEX tickets_state ON tickets (state);
CREATE INDEX tickets_day ON tickets (day);

CREATE TABLE holders (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
    name TEXT NOT NULL,
    id_number TEXT NOT NULL,
    sex TEXT,
    birth TEXT,
    nation TEXT,
    address TEXT,
    card_type TEXT,
    authority TEXT,
    valid_to TEXT,
    photo BLOB,
    created_at TEXT NOT NULL
);

CREATE TABLE windows (
    number INTEGER PRIMARY KEY,
    current_ticket TEXT,
    staff TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    last_finished TEXT,
    priority_streak INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE evaluations (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id),
    level INTEGER,
    window INTEGER NOT NULL,
    staff TEXT,
    channel TEXT NOT NULL,
    reasons TEXT NOT NULL DEFAULT '[]',
    at TEXT NOT NULL
);

CREATE TABLE appointments (
    code TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    slot_start TEXT NOT NULL,
    slot_end TEXT NOT NULL,
    holder_masked TEXT,
    id_hash TEXT,
    state TEXT NOT NULL,
    ticket_id TEXT
);

CREATE TABLE event_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    ticket_id TEXT,
    window INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX event_log_ticket ON event_log (ticket_id);
-- Append-only: history is corrected by new rows, never rewritten. Retention may delete.
CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log
BEGIN SELECT RAISE(ABORT, 'event_log is append-only'); END;

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    windows TEXT NOT NULL DEFAULT '[]',
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    qos INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE sensor_readings (
    sensor TEXT NOT NULL,
    at TEXT NOT NULL,
    temperature REAL,
    humidity REAL
);
CREATE INDEX sensor_readings_at ON sensor_readings (sensor, at);
