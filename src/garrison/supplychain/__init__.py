"""Model artifact scanning: whether loading a file can run code, found without ever loading it."""

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
