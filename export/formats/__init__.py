"""One module per export format; importing this package registers them all.

The modules import their converters (onnx, litert-torch, coremltools) inside the
functions that need them, so registering costs nothing.
"""

from . import coreml_format, onnx_format, tflite_format  # noqa: F401
