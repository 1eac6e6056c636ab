"""Errors that stop the server at start with a message telling the operator what to change."""


class StartupError(Exception):
    """The server cannot start as configured; the message says what to change."""


class UsageError(StartupError):
    """The command cannot run as asked; the message says what to set."""
