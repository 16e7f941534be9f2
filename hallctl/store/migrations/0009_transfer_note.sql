-- Schema 9: a transfer follow-up carries the window that sent it and the sending clerk's note,
-- so the receiving window's queue list shows where the visitor comes from and what is pending.
ALTER TABLE tickets ADD COLUMN from_window INTEGER;
ALTER TABLE tickets ADD COLUMN transfer_note TEXT;
