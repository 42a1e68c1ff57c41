"""One module per export format; importing this package registers them all.

The modules import their converters (onnx, litert-torch, coremltools) inside the
functions that need them, so registering costs nothing.
"""

from . import onnx_format  # noqa: F401  (registration order = table order)
from . import tflite_format  # noqa: F401,I001
from . import coreml_format  # noqa: F401,I001
