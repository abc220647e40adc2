"""``python3 -m sandbox.executor`` (or ``-m executor`` in the image): run the executor."""

import sys

from .serve import main

sys.exit(main())
