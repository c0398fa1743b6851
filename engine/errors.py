"""User-facing errors: raised for bad input, shown as a message (never a traceback)."""


class StudioError(Exception):
    """An error whose message is written for the user of the Studio."""


class InputError(StudioError):
    """The user's input (a question, a file, a path, a setting) cannot be used."""


class NotFoundError(StudioError):
    """A named thing (model, knowledge base, job, dataset) does not exist."""
