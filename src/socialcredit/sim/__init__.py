"""Synthetic populations and the demo city."""
