"""`python -m drflow.cli …` runs the command line."""

from drflow.cli import app

app()
