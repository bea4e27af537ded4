"""Fixtures for the dashboard tests; the harness behind them is dashboard_harness.py."""

from dashboard_harness import gateway, runs_dir, seeded

__all__ = ["gateway", "runs_dir", "seeded"]
