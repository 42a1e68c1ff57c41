"""Reproductions of the papers' tables and speed comparisons with peers (run: python -m benchmarks.run_all)."""
