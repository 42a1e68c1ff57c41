"""The ground layer: what every stage stands on and nothing above it.

Run-directory I/O, errors and exit codes, the recipe schema, logs, name registries resolved by
dotted path (``lazy``), safe loaders (``.pt2`` archives, TFLite Micro in a child process) and
probabilities. It imports no stage
(``distill``, ``export``, ``devices``) and not the app (``tinyship``); ``tests/test_layers.py``
holds it to that.
"""
