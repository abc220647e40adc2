"""The in-sandbox executor: one long-lived process per sandbox that performs actions.

A self-contained package (standard library + python-xlib + mss + Pillow; its
modules import only each other) that backends copy into their sandbox and run
with ``python3 launch.py`` or ``python3 -m <package>``.  One module per concern:

- :mod:`.wire`: the protocol (documented there), framing, limits, deadlines;
  the host's ``sandbox/channel.py`` frames with the same functions;
- :mod:`.xinput`: the X connection (XTest input, pointer, window titles);
- :mod:`.keyboard`: key names and characters to keysyms and keycodes;
- :mod:`.capture`: screen grabs and their PNG;
- :mod:`.settle`: waiting for the screen after an action, with the settle
  defaults the host sends too;
- :mod:`.validate` and :mod:`.actions`: checking and performing actions;
- :mod:`.commands`: the ``run`` op;
- :mod:`.files`: the ``files_*`` ops behind checkpoints;
- :mod:`.serve`: request handling and ``main``.

Importing this package loads none of it: the host needs only to know where it is.
"""

from __future__ import annotations

from pathlib import Path

EXECUTOR_DIR: Path = Path(__file__).parent
EXECUTOR_FILE: Path = EXECUTOR_DIR / "launch.py"
"""The launcher a backend runs as a file (see ``launch.py``)."""
