"""The ``garrison`` command line: thin Typer commands over the public API.

Imports stay lazy so that ``garrison --help`` loads neither numpy, scikit-learn, pandas nor torch, and a run imports
only the module of the command it names. The whole Typer application is ``garrison.cli.app.app``.
"""

from garrison.cli.app import main

__all__ = ["main"]
