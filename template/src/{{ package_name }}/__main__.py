"""Run the command line tool with `python -m`."""

from .cli import app

app(prog_name=__package__)
