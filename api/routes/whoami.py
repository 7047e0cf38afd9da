"""GET /api/v1/whoami: who the caller's token or login belongs to."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from alertlab.api.auth import HubUser, current_user

router = APIRouter(tags=["identity"])


class WhoAmI(BaseModel):
    name: str
    kind: str
    admin: bool
    groups: list[str]
    scopes: list[str]


@router.get("/whoami", response_model=WhoAmI)
async def whoami(user: HubUser = Depends(current_user)) -> dict:
    """The hub user (or service) making the request: name, admin flag, groups and the token's scopes."""
    return user.as_dict()
