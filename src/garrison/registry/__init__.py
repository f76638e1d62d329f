"""Model versions: digest, signature status, audit verdict, and which one serves."""

from __future__ import annotations

from garrison.registry.versions import ModelRegistry, RegistryRefusal

__all__ = ["ModelRegistry", "RegistryRefusal"]
