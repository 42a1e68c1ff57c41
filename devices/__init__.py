"""The devices stage: device catalog, static analysis, measured runners, estimates, verdicts, ship bundle.

Public API: :func:`profile` (writes profile/ and ship/), :func:`check` (CI gate),
:func:`load_catalog`, :func:`analyse`. CLI: ``python -m devices profile|check|catalog``.
"""

from .analysis import analyse
from .catalog import load_catalog
from .profile import ProfileReport, Settings, Target, adb_targets, check, profile, ssh_targets

__all__ = [
    "profile",
    "check",
    "load_catalog",
    "analyse",
    "ProfileReport",
    "Settings",
    "Target",
    "ssh_targets",
    "adb_targets",
]
