"""Least-privilege policy engine: YAML profiles that allow, deny or ask.

    policy = load_profile("default")          # or load_policy("my-policy.yaml")
    decision = policy.decide(action, PolicyContext(screen_width=1280, screen_height=800))
    print(policy.explain(action, context).render())

See :mod:`policies.schema` for the file format and :mod:`policies.engine` for
how a decision is reached.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names load on first use (PEP 562): building the policy models takes a
# noticeable part of a second, and `deskhand --help` imports this package.
_HOMES = {
    "Decision": "decision", "PolicyContext": "decision", "Triage": "decision",
    "Policy": "engine", "load_policy": "engine", "load_profile": "engine",
    "parse_policy": "engine", "shipped_profiles": "engine",
    "PolicyError": "errors", "Problem": "errors", "UnknownProfileError": "errors",
    "Explanation": "explanation",
}

if TYPE_CHECKING:
    from policies.decision import Decision, PolicyContext, Triage
    from policies.engine import Policy, load_policy, load_profile, parse_policy, shipped_profiles
    from policies.errors import PolicyError, Problem, UnknownProfileError
    from policies.explanation import Explanation


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"policies.{home}"), name)

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
