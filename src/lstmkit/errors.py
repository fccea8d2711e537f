"""The error a user can meet and fix: bad input, bad arguments, a missing file. The CLI prints its message
on one line and exits with status 2; anything else is a bug (status 1)."""


class LstmkitError(Exception):
    """A problem with the user's input, arguments or files, with a message that says how to fix it."""
