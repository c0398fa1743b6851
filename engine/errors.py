"""User-facing errors: raised for bad input, shown as a message (never a traceback)."""


class StudioError(Exception):
    """An error whose message is written for the user of the Studio."""


class InputError(StudioError):
    """The user's input (a question, a file, a path, a setting) cannot be used."""


class NotFoundError(StudioError):
    """A named thing (model, knowledge base, job, dataset) does not exist."""


def exit_status(command, interrupted: str = "interrupted") -> int:
    """Run a CLI ``command()`` (returning its exit status): a StudioError is one line on stderr and
    status 2, Ctrl-C the ``interrupted`` note and status 130; never a traceback for either."""
    import sys

    try:
        return command()
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
