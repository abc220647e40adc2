"""The ground floor: the action vocabulary and the throw-away desktops that run it.

:mod:`sandbox.actions` and :mod:`sandbox.keys` are what a sandbox executes
and what every layer above speaks; :mod:`sandbox.base` is the sandbox seam,
with local Xvfb, Docker and fake backends beside it.
"""
