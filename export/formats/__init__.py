"""One module per export format; importing this package registers them all.

The modules import their converters (onnx, litert-torch, coremltools) inside the
functions that need them, so registering costs nothing.
"""

import importlib

for _name in ("onnx_format", "tflite_format", "coreml_format"):
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a format module not written yet must not hide the others
        if _exc.name != f"{__name__}.{_name}":
            raise
