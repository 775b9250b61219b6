"""Kinds of subject. Government organs and public institutions are subjects like any other (charter art. 4)."""

from __future__ import annotations

from typing import Literal, get_args

SubjectKind = Literal[
    "person",
    "enterprise",
    "individual-business",
    "cooperative",
    "social-organisation",
    "public-institution",
    "government-organ",
    "other-organisation",
]

SUBJECT_KINDS: tuple[str, ...] = get_args(SubjectKind)
ORGANISATION_KINDS: tuple[str, ...] = tuple(k for k in SUBJECT_KINDS if k != "person")
