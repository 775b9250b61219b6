"""Enforcement: materialised status, the eligibility index and the decision log."""
