"""One module per export format; importing this package registers them all.

The modules import their converters (onnx, litert-torch, coremltools) inside the
functions that need them, so registering costs nothing.
"""

import importlib

# Registration order is the table order of exports.json and the summary.
for _module in ("onnx_format", "tflite_format", "coreml_format"):
    importlib.import_module(f"{__name__}.{_module}")
