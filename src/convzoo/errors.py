"""Errors that reach the user as one line and a non-zero exit code."""


class ConvzooError(Exception):
    """Base for every error convzoo raises on purpose; the CLI prints its message alone."""

    exit_code = 1


class UserInputError(ConvzooError, ValueError):
    """Bad input from the user: an unknown name, a malformed size, a filter that does not fit."""

    exit_code = 2
