"""Model artifact scanning: whether loading a file can run code, found without ever loading it.

Names are resolved lazily (PEP 562): ``garrison scan`` loads the scanner's modules, not signing or code analysis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.core.lazy import lazy_exports

if TYPE_CHECKING:
    from garrison.supplychain.blob import Blob
    from garrison.supplychain.codescan import scan_code
    from garrison.supplychain.context import LimitHit, ScanContext
    from garrison.supplychain.formats import detect_format
    from garrison.supplychain.limits import ScanLimits
    from garrison.supplychain.pickle_machine import PickleAnalysis, PickleCall, analyze_pickle
    from garrison.supplychain.pickle_policy import Allowlist, Verdict, default_allowlist
    from garrison.supplychain.result import Incomplete, ScannedFile, ScanResult
    from garrison.supplychain.safe_loading import (
        RestrictedUnpickler,
        load_pickle,
        load_torch_checkpoint,
        restricted_pickle_module,
    )
    from garrison.supplychain.scan import scan_bytes, scan_paths
    from garrison.supplychain.signing import (
        SignatureStatus,
        default_signature_path,
        generate_keypair,
        sign_model,
        signature_findings,
        verify_model,
    )

# name -> module under garrison.supplychain
_EXPORTS = {
    "Blob": "blob",
    "scan_code": "codescan",
    "LimitHit": "context",
    "ScanContext": "context",
    "detect_format": "formats",
    "ScanLimits": "limits",
    "PickleAnalysis": "pickle_machine",
    "PickleCall": "pickle_machine",
    "analyze_pickle": "pickle_machine",
    "Allowlist": "pickle_policy",
    "Verdict": "pickle_policy",
    "default_allowlist": "pickle_policy",
    "Incomplete": "result",
    "ScannedFile": "result",
    "ScanResult": "result",
    "RestrictedUnpickler": "safe_loading",
    "load_pickle": "safe_loading",
    "load_torch_checkpoint": "safe_loading",
    "restricted_pickle_module": "safe_loading",
    "scan_bytes": "scan",
    "scan_paths": "scan",
    "SignatureStatus": "signing",
    "default_signature_path": "signing",
    "generate_keypair": "signing",
    "sign_model": "signing",
    "signature_findings": "signing",
    "verify_model": "signing",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Allowlist",
    "Blob",
    "Incomplete",
    "LimitHit",
    "PickleAnalysis",
    "PickleCall",
    "RestrictedUnpickler",
    "ScanContext",
    "ScanLimits",
    "ScanResult",
    "ScannedFile",
    "SignatureStatus",
    "Verdict",
    "analyze_pickle",
    "default_allowlist",
    "default_signature_path",
    "detect_format",
    "generate_keypair",
    "load_pickle",
    "load_torch_checkpoint",
    "restricted_pickle_module",
    "scan_bytes",
    "scan_code",
    "scan_paths",
    "sign_model",
    "signature_findings",
    "verify_model",
]
