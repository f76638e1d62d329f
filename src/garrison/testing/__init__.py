"""The conformance kit: test a check (Garrison's own or a plugin's) against the check contract.

``check_conformance(check_cls)`` returns the problems, ``assert_conforms`` raises them, ``parametrize_checks``
makes one pytest case per contract item; ``make_context`` and ``tiny_tabular_dataset`` give a ready context with
tiny reference data and a fitted scikit-learn model.
"""

from garrison.testing.conformance import (
    CONTRACT,
    ConformanceCase,
    ContextFactory,
    CountingClassifier,
    assert_conforms,
    check_conformance,
    parametrize_checks,
)
from garrison.testing.reference import TinyTabular, make_context, tiny_tabular_dataset

__all__ = [
    "CONTRACT",
    "ConformanceCase",
    "ContextFactory",
    "CountingClassifier",
    "TinyTabular",
    "assert_conforms",
    "check_conformance",
    "make_context",
    "parametrize_checks",
    "tiny_tabular_dataset",
]
