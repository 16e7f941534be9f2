-- Schema 11: supervision (电子监察) alerts and 好差评 follow-up cases (hallctl/store/supervision.py).
-- An alert is a record a named person acknowledges and resolves, with a note; at most one
-- unresolved alert per (kind, subject), which the partial unique index holds even against a
-- second writer. A case follows one 差评 (rating <= 2) until someone verified, rectified and
-- closed it; due_day is counted in working days of the hall calendar when it is opened.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    window INTEGER,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    message_en TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'open',
    level INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT NOT NULL,
    escalated_at TEXT,
    acked_at TEXT,
    acked_by TEXT,
    acked_token INTEGER,
    ack_note TEXT,
    resolved_at TEXT,
    resolved_by TEXT,
    resolved_token INTEGER,
    resolve_note TEXT
);
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (kind, subject) WHERE state != 'resolved';
CREATE INDEX alerts_opened ON alerts (opened_at);

CREATE TABLE evaluation_cases (
    id INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL UNIQUE,
    number TEXT NOT NULL,
    window INTEGER NOT NULL,
    staff TEXT,
    level INTEGER NOT NULL,
    reasons TEXT NOT NULL DEFAULT '[]',
    opened_at TEXT NOT NULL,
    due_day TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    notes TEXT NOT NULL DEFAULT '[]',
    verified_at TEXT,
    verified_by TEXT,
    closed_at TEXT,
    closed_by TEXT,
    closed_token INTEGER,
    overdue_alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX evaluation_cases_open ON evaluation_cases (state, due_day);
