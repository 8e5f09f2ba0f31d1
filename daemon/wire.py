"""What every protocol codec shares: one error type carrying a countable reason."""

from __future__ import annotations


class DecodeError(ValueError):
    """A frame or packet failed validation.

    `reason` is a short stable token (e.g. "short", "bad-version") used as a drop-counter key,
    so displays can show drops by reason without parsing messages.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
