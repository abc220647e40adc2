"""Least-privilege policy engine: YAML profiles that allow, deny or ask."""
