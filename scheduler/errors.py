"""The scheduler's errors, each with a message meant for the person who made the request.

The web API maps them to HTTP: ScheduleError 422, ScheduleForbidden 403,
NotFound 404 (someone else's schedule or run is "not found", never "forbidden",
so its existence is not revealed)."""

from alertlab.core.errors import AlertLabError


class ScheduleError(AlertLabError):
    """A schedule (or a request about one) is invalid: the message says what is wrong."""


class ScheduleForbidden(ScheduleError):
    """The user may not use this filter, watchlist, area or annotator."""


class NotFound(ScheduleError):
    """No such schedule or run for this user."""
