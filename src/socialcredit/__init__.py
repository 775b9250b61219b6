"""socialcredit: a configurable social credit registry with due process built into the core."""

__version__ = "0.1.0"
