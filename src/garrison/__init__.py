"""Garrison: audit, harden and guard machine-learning systems across their whole life.

The top-level package stays import-light so that ``garrison --help`` starts fast; the public API lives in the
subpackages (``garrison.core``, ``garrison.adapters``, ``garrison.data``, ``garrison.audit``, ``garrison.report``,
``garrison.store``) and is re-exported from each one's ``__init__``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
