"""harness: grade the MLOps inference labs (Docker, Kubernetes, autoscaling, GPU canaries).

Public names are re-exported here; everything else is internal.
"""
from .checks.registry import Check, CheckFailed, Partial, Registry, check
from .errors import GradingError
from .labs import LABS, Lab, lab
from .report import CheckResult, Report

__all__ = ["Check", "CheckFailed", "CheckResult", "GradingError", "LABS", "Lab", "Partial",
           "Registry", "Report", "check", "lab"]
__version__ = "0.1.0"
