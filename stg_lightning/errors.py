"""User-facing errors: the CLI prints these as one clear message (no traceback) and exits with status 2."""


class StgUserError(Exception):
    """A problem the user can fix (missing file, bad config key, unavailable weights); the message says how."""


def user_message(err: StgUserError) -> str:
    """The message to print: a DataLoader worker re-raises ours with the worker's traceback prepended, and
    its last line holds the original message."""
    text = str(err)
    marker = f"{StgUserError.__module__}.{StgUserError.__name__}: "
    if "Original Traceback" in text and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text
