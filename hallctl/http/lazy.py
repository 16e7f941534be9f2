"""Routers made at their first request instead of at start (issue 12, goal 4).

The admin console's routes, the back office's, the reports' and the staff photos' are asked
for by a few people a day, yet making them (FastAPI analyses every endpoint's parameters, and
``include_router`` does it a second time for the app) and importing their modules cost the
cold start ≈0.04 s of CPU and a plain hall ≈1 MiB of idle RSS. A component registers such a
router with :meth:`hallctl.context.HallContext.add_lazy_routes` and the path prefix every one
of its routes lives under; the app keeps its place in the route order with a
:class:`RouterSlot` (which matches nothing), and :meth:`LazyRouters.ensure` puts the router's
routes there when a request under the prefix arrives (``CommandRoutes``, in front of
FastAPI, asks) or the OpenAPI document is built. So the routes' order, every answer and the
document are what they were with the routers made at start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from hallctl.context import LazyRoutes


class RouterSlot(BaseRoute):
    """The place among the app's routes of routes made later: it matches no request."""

    def __init__(self, what: str, prefix: str | None = None) -> None:
        self.what = what
        self.prefix = prefix  # a lazy router's: the path prefix its first request comes under

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError(f"{self.what} were not made before a request reached them")


def fill_slot(app: FastAPI, slot: RouterSlot, add: Callable[[], None]) -> None:
    """Put the routes ``add`` appends to ``app`` where ``slot`` stands, in its place (the slot goes)."""
    routes = app.router.routes
    at = routes.index(slot)
    later = routes[at + 1 :]
    del routes[at:]
    try:
        add()
    finally:
        routes.extend(later)


class LazyRouters:
    """The app's routers still to be made, each in its slot."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.pending: list[tuple[RouterSlot, LazyRoutes]] = []

    def add(self, lazy: LazyRoutes) -> None:
        slot = RouterSlot(f"the routes under {lazy.prefix}", lazy.prefix)
        self.app.router.routes.append(slot)
        self.pending.append((slot, lazy))

    def ensure(self, path: str | None = None) -> None:
        """Make the routers a request for ``path`` could reach (``None``: every one, for the document)."""
        for item in [i for i in self.pending if path is None or path.startswith(i[1].prefix)]:
            self.pending.remove(item)  # once, even if making it fails: never two copies of a route
            self._make(*item)

    def _make(self, slot: RouterSlot, lazy: LazyRoutes) -> None:
        router = lazy.build()
        paths = [getattr(r, "path", None) for r in router.routes]
        stray = [p for p in paths if not (isinstance(p, str) and p.startswith(lazy.prefix))]
        if stray:  # a request for them would not have made the router: a programming error, said at once
            raise RuntimeError(f"lazy routes outside their prefix {lazy.prefix}: {stray}")
        fill_slot(self.app, slot, lambda: self.app.include_router(router))
