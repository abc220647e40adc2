"""deskhand's agent: actions, the step loop, planners, perception and the CLI."""
