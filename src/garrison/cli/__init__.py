"""The ``garrison`` command line: thin Typer commands over the public API.

Imports stay lazy so that ``garrison --help`` loads neither numpy, scikit-learn, pandas nor torch.
"""

from garrison.cli.app import app, main

__all__ = ["app", "main"]
