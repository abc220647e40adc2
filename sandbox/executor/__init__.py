"""The in-sandbox executor: one long-lived process per sandbox that performs actions.

The code lives in :mod:`sandbox.executor.executor`, a single self-contained file
(standard library + python-xlib + mss + Pillow, no deskhand imports) that
backends copy into their sandbox and run as ``python3 executor.py``.  Importing
this package loads none of it: the host only needs to know where the file is.
"""

from __future__ import annotations

from pathlib import Path

EXECUTOR_FILE: Path = Path(__file__).with_name("executor.py")
