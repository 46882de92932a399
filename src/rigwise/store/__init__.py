"""The embedded SQLite store of benchmark runs (:mod:`rigwise.store.db`)."""
