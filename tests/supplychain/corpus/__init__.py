"""Labelled corpus of model files for the scanner: generators that write benign files (made by the real
libraries) and malicious files (harmless payloads, one per published technique) into a directory."""

from .benign import BenignCorpus, write_benign
from .malicious import SPECS, write_malicious
from .manifest import Sample, Spec, read_manifest, write_manifest

__all__ = [
    "SPECS",
    "BenignCorpus",
    "Sample",
    "Spec",
    "read_manifest",
    "write_benign",
    "write_malicious",
    "write_manifest",
]
