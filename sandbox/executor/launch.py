"""Run the executor from its files: ``python3 path/to/executor/launch.py [ARGS]``.

The executor is a package whose modules import each other relatively, so it
runs under whatever name its folder has (``sandbox.executor`` in a checkout,
``executor`` in the image).  Run as a file, Python would put this folder itself
on the path; this launcher puts the folder's parent there instead and imports
the package by its folder name.
"""

import importlib
import sys
from pathlib import Path

if __name__ == "__main__":
    package = Path(__file__).resolve().parent
    sys.path[0] = str(package.parent)
    sys.exit(importlib.import_module(f"{package.name}.serve").main())
