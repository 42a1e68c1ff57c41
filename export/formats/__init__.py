"""One module per export format (``*_format.py``); importing this package registers them all.

Modules are found by name, so adding a format is adding one module; the table order
(of exports.json and the summary) is each format's ``rank``, not the import order.
The modules import their converters (onnx, litert-torch, coremltools) inside the
functions that need them, so registering costs nothing.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.endswith("_format"):
        importlib.import_module(f"{__name__}.{_info.name}")
