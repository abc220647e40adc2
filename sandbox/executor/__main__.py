"""``python -m sandbox.executor``: the same as running ``executor.py`` as a file."""

import sys

from sandbox.executor.executor import main

sys.exit(main())
