"""What every test relies on, whatever started the test run."""

from __future__ import annotations

import signal

# A test run started in the background by a non-interactive shell (`make test &`, some CI
# runners) inherits SIGINT ignored, and so would every process the tests start: the tests
# that press Ctrl-C in a child would wait in vain.  With Python's own handler here, the
# children start with SIGINT at its default again (an ignored signal stays ignored across
# exec; a handled one does not).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
