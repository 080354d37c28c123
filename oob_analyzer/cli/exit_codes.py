"""Exit codes of the `oob-analyzer` command."""

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # click.ClickException: the run could not be done
    USAGE = 2  # click's own code for bad options
    INPUT_DAMAGED = 3  # the run completed, but some input could not be read whole
    INTERRUPTED = 130  # SIGINT/SIGTERM: what was detected until then is written (128 + SIGINT)
