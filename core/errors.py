"""AlertLab's exceptions. Each carries a message meant for a person: the CLI
prints it as one line (a traceback only with --debug)."""


class AlertLabError(Exception):
    """Base class: an error whose message is shown to the user as is."""


class ConfigError(AlertLabError):
    """A setting has a value AlertLab cannot use."""


class MissingPrerequisite(AlertLabError):
    """A program AlertLab needs is not installed."""

    def __init__(self, program: str, install_hint: str):
        self.program = program
        self.install_hint = install_hint
        super().__init__(f"{program} not found: {install_hint}")


class ServiceError(AlertLabError):
    """A service did not start, or did not answer in time."""

    def __init__(self, service: str, message: str, log: str | None = None):
        self.service = service
        self.log = log
        where = f" (see {log})" if log else ""
        super().__init__(f"{service}: {message}{where}")
