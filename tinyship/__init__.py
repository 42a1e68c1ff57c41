"""Shared helpers for the three tinyship stages: errors, run-directory I/O and recipes.

Stages (distill, export, devices) talk only through files in a run directory; this
package is the one small place they share code, so it must stay free of heavy imports.
"""

__version__ = "0.1.0"
