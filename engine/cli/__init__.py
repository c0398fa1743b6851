"""The command line: `python -m engine <command>`; each group of commands in its own module."""

from engine.cli.main import main, parser

__all__ = ["main", "parser"]
