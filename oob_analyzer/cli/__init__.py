"""The `oob-analyzer` command: thin click commands over the pipeline and the store."""

from __future__ import annotations

import click

from oob_analyzer.cli.anomalies import anomalies
from oob_analyzer.cli.db import db
from oob_analyzer.cli.detect import detect
from oob_analyzer.cli.export import export
from oob_analyzer.cli.extract import extract
from oob_analyzer.cli.live import capture, listen
from oob_analyzer.cli.mirror import mirror_server
from oob_analyzer.cli.query import attacks, hits
from oob_analyzer.cli.replay import replay

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oob-analyzer")
def main() -> None:
    """oob-analyzer: find the attacks in a copy of your HTTP traffic.

    Reads mirrored traffic (never the live path), recognises attacks in each HTTP request
    and records them in a database for you to query.
    """


main.add_command(replay)
main.add_command(extract)
main.add_command(hits)
main.add_command(attacks)
main.add_command(mirror_server)
main.add_command(export)
main.add_command(db)
main.add_command(anomalies)
main.add_command(detect)
main.add_command(listen)
main.add_command(capture)
