"""``hallctl central``: the city's view of many halls (issue 16, docs/city.md).

A separate process, never part of a hall's daemon: any number of them read the halls'
``event/log`` rows from the city's broker through an MQTT 5 shared subscription, store them
in PostgreSQL (daily partitions, idempotent on (hall, seq)), ask a hall to replay what is
missing, and serve the city dashboard. It reads the halls only over MQTT, so it imports
none of the hall's service, engine or store (an import-linter contract holds that).
"""
