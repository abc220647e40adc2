"""Least-privilege policy engine: YAML profiles that allow, deny or ask.

    policy = load_profile("default")          # or load_policy("my-policy.yaml")
    decision = policy.decide(action, PolicyContext(screen_width=1280, screen_height=800))
    print(policy.explain(action, context).render())

See :mod:`policies.schema` for the file format and :mod:`policies.engine` for
how a decision is reached.
"""

from policies.decision import Decision, PolicyContext, Triage
from policies.engine import Policy, load_policy, load_profile, parse_policy, shipped_profiles
from policies.errors import PolicyError, Problem, UnknownProfileError
from policies.explanation import Explanation

__all__ = [
    "Decision",
    "Explanation",
    "Policy",
    "PolicyContext",
    "PolicyError",
    "Problem",
    "Triage",
    "UnknownProfileError",
    "load_policy",
    "load_profile",
    "parse_policy",
    "shipped_profiles",
]
