"""Checks, one module per lab. Importing a lab module registers its checks."""
from .registry import Check, CheckFailed, Partial, Registry, check, default_registry

__all__ = ["Check", "CheckFailed", "Partial", "Registry", "check", "default_registry"]
