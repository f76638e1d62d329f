"""Protection of data at rest: streaming authenticated encryption of files (AES-256-GCM, STREAM construction)
with wrapped per-file data keys, passphrase KDFs and key rotation; anonymisation of tables (PII detection, keyed
pseudonyms, generalisation to k-anonymity, l-diversity)."""

from garrison.protect.anonymize import (
    AnonymizeConfig,
    AnonymizeResult,
    anonymize_frame,
    load_anonymize_config,
    parse_anonymize_config,
)
from garrison.protect.encryption import (
    DEFAULT_CHUNK_SIZE,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    read_header,
    rotate_key,
)
from garrison.protect.header import HEADER_SIZE, MAX_CHUNK_SIZE, Header
from garrison.protect.kanon import (
    AnonymityMeasure,
    KAnonResult,
    generalize_to_k,
    k_anonymity,
    l_diversity,
    measure,
    mondrian,
)
from garrison.protect.keys import (
    KEY_PREFIX,
    Argon2idParams,
    KeyEncryptionKey,
    ScryptParams,
    generate_key,
    write_key_file,
)
from garrison.protect.pii import (
    ENTITIES,
    ColumnClass,
    Span,
    classify_column,
    detect_spans,
    find_spans,
    iban_valid,
    luhn_valid,
)
from garrison.protect.pseudonym import Pseudonymizer
from garrison.protect.table import read_table, write_table

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ENTITIES",
    "HEADER_SIZE",
    "KEY_PREFIX",
    "MAX_CHUNK_SIZE",
    "AnonymityMeasure",
    "AnonymizeConfig",
    "AnonymizeResult",
    "Argon2idParams",
    "ColumnClass",
    "Header",
    "KAnonResult",
    "KeyEncryptionKey",
    "Pseudonymizer",
    "ScryptParams",
    "Span",
    "anonymize_frame",
    "classify_column",
    "decrypt_file",
    "decrypt_stream",
    "detect_spans",
    "encrypt_file",
    "encrypt_stream",
    "find_spans",
    "generalize_to_k",
    "generate_key",
    "iban_valid",
    "k_anonymity",
    "l_diversity",
    "load_anonymize_config",
    "luhn_valid",
    "measure",
    "mondrian",
    "parse_anonymize_config",
    "read_header",
    "read_table",
    "rotate_key",
    "write_key_file",
    "write_table",
]
