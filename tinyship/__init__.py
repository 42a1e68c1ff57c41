"""tinyship: distill an ensemble into a small student, export it, prove it fits each device.

The three stages' entry points, one shape each (imported lazily, so ``import tinyship``
stays cheap: no torch, no converters):

- :func:`distill` ``(recipe, run_dir, ...)`` -> ``run_dir/student`` (:func:`distill.run`)
- :func:`export` ``(run_dir, formats, precisions, ...)`` -> ``run_dir/export`` (:func:`export.run`)
- :func:`profile` ``(run_dir, devices, ...)`` -> ``run_dir/profile`` and ``ship`` (:func:`devices.profile`)

Stages talk only through files in a run directory; the rest of this package (errors,
run-directory I/O, recipes) is the one small place they share code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute), resolved on first use
_LAZY = {
    "distill": ("distill", "run"),
    "export": ("export", "run"),
    "profile": ("devices", "profile"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyship' has no attribute {name!r}")


__all__ = ["distill", "export", "profile", "__version__"]
