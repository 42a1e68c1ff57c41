"""TFLite Micro parity for int8 .tflite files: the shared child-process runner in ground.tflm.

Kept as ``export.tflm`` so the export stage reads as before (``tflm.run(path, x)``); the runner
itself lives in ``ground/tflm.py`` because the devices stage measures arenas with it too.
"""

from __future__ import annotations

from ground.tflm import TflmRefused, TflmResult, run, runtime

__all__ = ["TflmRefused", "TflmResult", "run", "runtime"]
