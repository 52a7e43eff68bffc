"""In-chat review assembled from its settings and ports: what `sidecar/app.py` wires.

    review = ReviewService(config.review, ReviewPorts(...))   # only when config.review.enabled
    attachments = review.buttons.pending_attachments(target, rendered)
    async with review.server():                              # the callback listener
        ...
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sidecar.review.buttons import ReviewButtons
from sidecar.review.pipeline import ClickPipeline, ReviewPorts
from sidecar.review.routes import ReviewRoutes, ReviewServer
from sidecar.review.settings import ReviewSettings

__all__ = ["ReviewService"]


class ReviewService:
    """The buttons, the click pipeline, its routes and its listener, for enabled review settings."""

    def __init__(self, settings: ReviewSettings, ports: ReviewPorts, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.enabled or settings.keys is None:
            raise ValueError("ReviewService needs [review] enabled")
        self.settings = settings
        self.buttons = ReviewButtons(
            public_url=settings.public_url, keys=settings.keys, action_ttl=settings.action_ttl, clock=clock
        )
        self.pipeline = ClickPipeline(settings, ports, clock=clock)
        self.routes = ReviewRoutes(self.pipeline, settings.public_url)

    def server(self) -> ReviewServer:
        """The callback listener on `review.listen_addr` (use as `async with`)."""
        return ReviewServer(self.settings, self.routes)
