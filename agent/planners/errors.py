"""Errors raised by model planners.

    PlannerError
    ├── PlannerConfigError        constructor arguments that cannot work together
    ├── PlannerAPIError           the provider refused the request or could not be reached
    │   ├── PlannerUnavailable    overloaded, rate limited, 5xx or no connection, after retries
    │   ├── PlannerAuthError      the key was refused (401/403)
    │   └── PlannerRequestError   the provider rejected the request itself (400, 404, 413, ...)
    └── PlannerResponseError      a reply that cannot be understood

Malformed *actions* in a reply are not errors: they become
``ProposedAction(action=None, error=...)`` and go back to the model.  SDK
exceptions (``anthropic.APIError``, ``openai.APIError``) are translated into
this tree where the SDK is called; their messages carry the provider's words
and status code, never a key.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Base class of every planner failure."""


class PlannerConfigError(PlannerError):
    """The planner was built with settings that cannot work; the message names the fix."""


class PlannerAPIError(PlannerError):
    """The model provider answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlannerUnavailable(PlannerAPIError):
    """A transient failure that outlived the retries; trying again later may work."""


class PlannerAuthError(PlannerAPIError):
    """The provider refused the credentials."""


class PlannerRequestError(PlannerAPIError):
    """The provider rejected the request as malformed, too large or for an unknown model."""


class PlannerResponseError(PlannerError):
    """The provider's reply did not have the expected shape."""


def api_error(provider: str, status: int | None, detail: str) -> PlannerAPIError:
    """The planner error for an SDK failure (``status`` None: no answer at all)."""
    if status is None:
        return PlannerUnavailable(f"cannot reach the {provider} API: {detail}")
    return classify_status(status)(f"{provider} API answered {status}: {detail}", status=status)


def classify_status(status: int | None) -> type[PlannerAPIError]:
    """The error class for an HTTP status (``None`` means no response: a connection failure)."""
    if status is None or status in (408, 409, 429) or status >= 500:
        return PlannerUnavailable
    if status in (401, 403):
        return PlannerAuthError
    return PlannerRequestError
