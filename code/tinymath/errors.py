"""The one exception type that reaches the user as a one-line message (exit code 2, no traceback)."""


class UserError(Exception):
    """Bad input from the user: a config value, a missing file, a stage run out of order.

    The message is a single line naming the file, key or argument, what was expected and what was found.
    """
