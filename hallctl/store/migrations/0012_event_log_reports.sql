-- Schema 12: reports read the event log by time range (a day, a month) and each window's last
-- sign-in or sign-out before it; without these indexes both would scan a year of history.
CREATE INDEX event_log_at ON event_log (at);
CREATE INDEX event_log_kind_window ON event_log (kind, window, seq);
