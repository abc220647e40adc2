"""Screens of the deskhand TUI: task, live session, attach, sessions, replay."""
