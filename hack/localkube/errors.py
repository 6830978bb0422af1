"""The one exception type the command line turns into a clear message and exit code 1."""


class LocalkubeError(Exception):
    """A problem the user can act on: the message says what and, where possible, how."""
