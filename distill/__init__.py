"""The distill stage: teacher ensemble -> transfer set -> small student (Bucilua 2006; Hinton 2015).

Run it as ``python -m distill --recipe recipes/demo.yaml --out build/demo``, or from Python
with :func:`distill.run.distill`. Importing the package stays light (no torch import here).
"""
