-- Schema 3: kiosk tokens are scoped to kiosks (a JSON list of kiosk ids), so that a
-- swipe's offer goes only to that kiosk's streams and is redeemed only by its token.
-- Kiosk tokens made before this list existed have '[]' and act for every kiosk.
ALTER TABLE tokens ADD COLUMN kiosks TEXT NOT NULL DEFAULT '[]';
