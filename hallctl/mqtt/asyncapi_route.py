"""``GET /api/v1/asyncapi.json``: the route the daemon registers, without the document's imports.

The document (:mod:`hallctl.mqtt.asyncapi`) needs the response and payload models of
every command and event (:mod:`hallctl.schemas`); importing them at start cost idle
memory and start-up time in every hall (issue 12, goal 4), so they are imported, and the
document generated (≈0.3 s of CPU), at the first request for it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hallctl.config import Config


def router(cfg: Config) -> APIRouter:
    """``GET /api/v1/asyncapi.json`` (no token, like the OpenAPI document)."""
    api = APIRouter(prefix="/api/v1")
    cache: list[dict[str, Any]] = []

    @api.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        if not cache:
            from hallctl.mqtt.asyncapi import document

            cache.append(document(cfg))
        return JSONResponse(cache[0])

    return api
