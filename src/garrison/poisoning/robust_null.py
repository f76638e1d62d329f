"""Decision rules for poison detection: which classes look poisoned, and which of their rows are suspects.

A fixed share of every class is never removed (ART's defaults flag a third to a half of every class). Instead:

1. **Class flag: a null built from the other classes**, two of them, one per kind of evidence.

   - *k-NN evidence* (:func:`asymmetry_z`): natural overlap between classes is shared — where rows of ``a`` sit
     among ``b``, rows of ``b`` sit among ``a`` — whatever the class sizes or how confusable the classes are.
     Relabelled rows make a boundary one-sided: the flipped or triggered rows labelled ``t`` sit among their true
     class, while that class's rows still sit among their own. Each class's outflow (its rows sitting mostly
     among other labels) is tested against its inflow (other classes' rows sitting mostly among it) by a sign
     test, ``z = (out - in - 1) / sqrt(out + in)``. It needs no class count: it works for 2 classes as for 10.
   - *Representation evidence* (:func:`modified_z`): each class's pattern shift against the other classes' by
     the modified z-score of Iglewicz and Hoaglin, ``0.6745 (s - median) / MAD``, with the MAD floored at 15 %
     of the median so that classes which agree closely do not turn a tiny difference into a huge z. It needs at
     least :data:`MIN_CLASSES_FOR_MAD` classes for the median to mean something.

   A class is flagged when a z exceeds ``z_threshold`` (3.5, Iglewicz and Hoaglin's outlier cut).
2. **Suspects: data-driven, within flagged classes only.** For the representation evidence, one side of the
   class's 2-means split (the cluster whose input-space pattern departs most from the other classes), its edge
   redrawn in input space by a logistic regression refit on its own assignment — the split, not a share, decides
   how many. For the k-NN evidence, the rows most of whose neighbours carry another label,
   plus the rows a logistic regression fit on those rows against the class's undisputed rows puts on their side
   (and that have at least one disagreeing neighbour). Classes are taken strongest first, and each flagged
   class's suspects leave the neighbour pool before the next is judged, so that the clean rows of the source
   classes — whose neighbours are poisons labelled with the target — are not flagged in turn.

The hard case, and why the evidence is oriented the way it is: when 10 % of all rows are poisoned into one target
class, that class is about half poison, so "the smaller cluster is the poison" and "the rows with the largest
spectral score are the poison" both break down. The detector orients a split by what poisons *are* — rows of other
classes carrying one trigger — with input-space evidence: a trigger is a feature pattern no other class shows
(pattern shift), and a small trigger leaves a row among the rows of its true class (k-NN label disagreement).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MIN_CLASSES_FOR_MAD",
    "Z_THRESHOLD",
    "asymmetry_z",
    "modified_z",
]

Z_THRESHOLD = 3.5
MIN_CLASSES_FOR_MAD = 5
_MAD_TO_Z = 0.6745


def modified_z(values: np.ndarray, *, min_scale: float = 0.0) -> np.ndarray:
    """Modified z-scores ``0.6745 (v - median) / max(MAD, min_scale)`` (Iglewicz & Hoaglin 1993).

    When every value but a few equals the median (MAD 0) and ``min_scale`` is 0, the mean absolute deviation
    (times 1.2533, its ratio to the MAD under normality) stands in; when that is 0 too, every z is 0."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v.copy()
    med = float(np.median(v))
    dev = np.abs(v - med)
    mad = float(np.median(dev))
    scale = max(mad, min_scale)
    if scale <= 0:
        mean_dev = float(dev.mean()) * 1.2533
        if mean_dev <= 0:
            return np.zeros_like(v)
        scale = mean_dev
    return _MAD_TO_Z * (v - med) / scale


def asymmetry_z(flow: np.ndarray) -> np.ndarray:
    """Per class, how one-sided its k-NN boundaries are: ``(out - in - 1) / sqrt(out + in)``, a sign test with
    continuity correction, where ``out`` counts the class's rows that sit mostly among other labels and ``in`` the
    other classes' rows that sit mostly among this label (``flow[a, b]`` from
    :func:`~garrison.poisoning.knn.disagreement_flow`).

    Natural class overlap is shared — where rows of a sit among b, rows of b sit among a — so the null is
    symmetric whatever the class sizes or how confusable the classes are. Relabelled rows make it one-sided:
    flipped or triggered rows of b labelled a sit among b, while b's rows still sit among their own."""
    flow = np.asarray(flow, dtype=np.float64)
    out_flow, in_flow = flow.sum(axis=1), flow.sum(axis=0)
    return (out_flow - in_flow - 1) / np.sqrt(np.maximum(out_flow + in_flow, 1.0))
