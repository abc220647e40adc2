"""deskhand's agent floor and its front ends.

The agent floor: the step loop (:mod:`agent.loop`), approvals, settings,
planners (:mod:`agent.planners`) and perception (:mod:`agent.perception`).
On top of it sit the front ends: the run builder (:mod:`agent.runs`), the
planner and sandbox registries (:mod:`agent.registry`) and the CLI
(:mod:`agent.cli`).  The action vocabulary lives on the ground floor, in
:mod:`sandbox.actions`.
"""
