"""Textual terminal UI: delegate, watch, approve, replay."""
