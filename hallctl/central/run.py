"""``hallctl central``: the ingestor and the dashboard in one process, one asyncio loop."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from hallctl.central.config import CentralConfig
from hallctl.central.ingest import Ingestor
from hallctl.central.store import CentralStore
from hallctl.central.web import city_app

log = logging.getLogger(__name__)


async def serve(cfg: CentralConfig) -> None:
    """Run until SIGTERM/SIGINT (uvicorn's handlers end ``serve``); rows in hand are written first."""
    ingestor = Ingestor(cfg)
    reader = CentralStore(cfg.postgres.dsn)
    await ingestor.start()
    try:
        await reader.connect()
        app = city_app(cfg, ingestor, reader)
        server = uvicorn.Server(
            uvicorn.Config(app, host=cfg.http.host, port=cfg.http.port, log_level="warning", lifespan="off")
        )
        log.info("hallctl central %s: dashboard on http://%s:%d/city", cfg.central.id, cfg.http.host, cfg.http.port)
        await server.serve()
    finally:
        await ingestor.stop()
        await reader.close()


def main(cfg: CentralConfig) -> int:
    asyncio.run(serve(cfg))
    return 0
