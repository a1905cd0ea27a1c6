"""The error a user fixes by changing a setting (exit 2), shared by every module that checks one."""

from __future__ import annotations


class OptionsError(ValueError):
    """An invalid setting. ``str()`` is a one-line message naming the option and its value."""

    def __init__(self, option: str, value: object, reason: str):
        self.option, self.value, self.reason = option, value, reason
        shown = f" {str(value)!r}" if value is not None else ""
        super().__init__(f"{option}{shown}: {reason}")
