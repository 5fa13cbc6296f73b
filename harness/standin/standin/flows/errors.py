"""The errors of the flow engine: one family, so a caller catching `FlowError` sees every refusal."""

from __future__ import annotations


class FlowError(ValueError):
    """A flow export the engine cannot run: bad JSON, a missing key, or something it does not support.

    Raised while an export is loaded (validation is eager), never half-way through a conversation.
    The message names the file or flow, the node and what was found against what was expected.
    """


class SessionError(FlowError):
    """A session state that cannot be resumed: not waiting, malformed, or for another contact."""
