"""Blind human ratings of two variants' answers: the store (SQLite), the session items, and the
aggregation (win rates, Bradley-Terry, Elo, agreement) in :mod:`engine.ratings.aggregate`."""

from engine.ratings.corrections import Correction
from engine.ratings.sessions import Progress, Rating, RatingItem, RatingSession, SessionItem, items_from_answers
from engine.ratings.store import RatingStore, default_store

__all__ = [
    "Correction",
    "Progress",
    "Rating",
    "RatingItem",
    "RatingSession",
    "RatingStore",
    "SessionItem",
    "default_store",
    "items_from_answers",
]
