"""User-facing errors: the CLI prints these as one clear message (no traceback) and exits with status 2."""


class StgUserError(Exception):
    """A problem the user can fix (missing file, bad config key, unavailable weights); the message says how."""
