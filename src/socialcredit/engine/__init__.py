"""Evaluation: the per-subject reference evaluator (explains) and the batch plan (whole population)."""

from socialcredit.engine.records import Rec
from socialcredit.engine.reference import Membership, SchemeResult, Status, evaluate

__all__ = ["Membership", "Rec", "SchemeResult", "Status", "evaluate"]
