"""Request and response shapes of ``POST /v1/feedback`` (a clinician's rating of an earlier answer)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class Rating(StrEnum):
    up = "up"
    down = "down"


class FeedbackRequest(BaseModel):
    response_id: str = Field(..., min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="the id of an earlier /v1/chat/completions or /v1/consult answer")
    rating: Rating
    correction: str | None = Field(None, min_length=1, max_length=8000,
                                   description="the answer the clinician would have given; stored de-identified")


class FeedbackResponse(BaseModel):
    id: str
    object: Literal["feedback"] = "feedback"
    response_id: str
    rating: Rating
    corrected: bool
