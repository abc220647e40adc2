"""Sandboxes: throw-away desktops the agent acts on (local Xvfb, Docker)."""
