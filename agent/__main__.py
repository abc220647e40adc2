"""`python -m agent`: the deskhand command."""

from agent.cli import main

main()
