-- Schema 5: a ticket whose paper slip could not be printed is marked, so the window
-- terminal, the ticket view and a reprint can see it; a reprint that prints clears it.
ALTER TABLE tickets ADD COLUMN print_failed INTEGER NOT NULL DEFAULT 0;
