"""The `drflow` command line; `app` is the console script (`drflow = "drflow.cli:app"`)."""

from drflow.cli.main import app

__all__ = ["app"]
