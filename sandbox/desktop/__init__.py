"""The sandbox desktop's configuration, shared by every backend.

    openbox-rc.xml     openbox: one workspace, click to focus, Ctrl+Alt+T opens
                       a UTF-8 xterm (DejaVu Sans Mono, no blinking cursor)
    openbox/menu.xml   the right-click root menu (found through $XDG_CONFIG_DIRS)
    session.py         starts Xvfb + openbox, then execs a command inside them

Backends copy or reference these files; nothing here imports deskhand.
"""

from __future__ import annotations

from pathlib import Path

DESKTOP_DIR: Path = Path(__file__).resolve().parent
OPENBOX_RC: Path = DESKTOP_DIR / "openbox-rc.xml"
SESSION_FILE: Path = DESKTOP_DIR / "session.py"
