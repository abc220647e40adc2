"""Widgets of the deskhand TUI, one small widget per module."""
