"""Tamper-evident SQLite audit log, verification and replay."""
