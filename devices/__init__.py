"""The devices stage: device catalog, static analysis, measured runners, estimates, verdicts, ship bundle.

Public API: :func:`profile_files` (any .onnx/.tflite without a run: builds one, then
profiles it), :func:`profile` (writes profile/ and ship/), :func:`check` (CI gate),
:func:`load_catalog`, :func:`analyse`. CLI: ``python -m devices profile|check|catalog``.
"""

from .analysis import analyse
from .catalog import load_catalog
from .files import profile_files
from .profile import ProfileReport, Settings, Target, adb_targets, check, profile, ssh_targets

__all__ = [
    "profile",
    "profile_files",
    "check",
    "load_catalog",
    "analyse",
    "ProfileReport",
    "Settings",
    "Target",
    "ssh_targets",
    "adb_targets",
]
