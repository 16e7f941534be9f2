"""The hall's web pages, served by the daemon from this package (works offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount_pages(app: FastAPI) -> None:
    """Attach the pages and their static files to the API app."""
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return "<!doctype html><meta charset=utf-8><title>hallctl</title><h1>hallctl</h1><a href=/docs>API</a>"
