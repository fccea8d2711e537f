"""The error a user can meet and fix: bad input, bad arguments, a missing file. The CLI prints its message
on one line and exits with status 2; anything else is a bug (status 1).

The subclasses are also the built-in type torch raises for the same mistake, so that code written against
torch.nn (``except ValueError``, ``except RuntimeError``) catches lstmkit's errors too.
"""


class LstmkitError(Exception):
    """A problem with the user's input, arguments or files, with a message that says how to fix it."""


class InvalidValue(LstmkitError, ValueError):
    """An argument or input of the right type with a value outside what is allowed (torch: ValueError)."""


class InvalidType(LstmkitError, TypeError):
    """An argument of the wrong type, such as ``bias="False"`` (torch: TypeError)."""


class ShapeError(LstmkitError, RuntimeError):
    """An input or state whose shape does not fit the module (torch: RuntimeError)."""
