"""TFLite Micro parity for int8 .tflite files: the shared child-process runner in tinyship.tflm.

Kept as ``export.tflm`` so the export stage reads as before (``tflm.run(path, x)``); the runner
itself lives in ``tinyship/tflm.py`` because the devices stage measures arenas with it too.
"""

from __future__ import annotations

from tinyship.tflm import TflmRefused, TflmResult, run, runtime

__all__ = ["TflmRefused", "TflmResult", "run", "runtime"]
