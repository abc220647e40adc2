"""The desktop image's build context sources: Dockerfile, entrypoint, VNC bridge, pinned wheels.

Nothing here is imported by deskhand itself; ``entrypoint.py`` and
``vnc_bridge.py`` run inside the container under its own python3.
"""
