"""Scripted UI test suites: ``deskhand test``.

A suite file (``*.suite.yaml``) names cases; each attempt of a case runs in a
fresh sandbox, as one audit session, under the policy in force.  The pieces,
lowest first:

- :mod:`agent.suites.schema` reads and validates a whole suite file (every
  mistake names file, line and field) into typed cases and steps;
- :mod:`agent.suites.textmatch` matches text as a person reads it (OCR's
  O/0, l/1/I, rn/m confusions, case, spacing, a dropped hyphen);
- :mod:`agent.suites.checks` and :mod:`agent.suites.arrange` evaluate
  assertions and run setup/teardown inside the sandbox;
- :mod:`agent.suites.driver` is the planner that walks a case's steps for the
  agent loop, asserting between actions and handing a ``goal`` to a model;
- :mod:`agent.suites.attempt` wires one attempt (the one place a run is built);
- :mod:`agent.suites.runner` schedules attempts over workers, engines, shards
  and retries; :mod:`agent.suites.reports` writes JUnit XML, JSON lines, HTML;
- the planner benchmark on top: :mod:`agent.suites.benchmark` (models, budgets,
  trials, resume), :mod:`agent.suites.metering` and :mod:`agent.suites.plan_cache`
  (Planner wrappers around a goal's model), :mod:`agent.suites.results_table`
  (the statistics, pure).
"""
