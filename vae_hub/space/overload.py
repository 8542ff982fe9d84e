"""A full queue as a message: who is turned away reads why, and when to come back.

Gradio answers a request that finds its queue full with a bare 503, which the page shows as "This application is
currently busy" and gradio_client as "Queue is full!": neither says when to retry. ``BusyMessage`` turns that
answer into ``429 Too Many Requests`` with a ``Retry-After`` header and a sentence the page shows as it is. Nothing
is lost silently: the request was never queued, and its sender is told so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

JOIN_PATH = "/queue/join"


def busy_message(waiting: int, retry_after: int) -> str:
    are = "request is" if waiting == 1 else "requests are"
    return (
        f"The Space is busy: {waiting} {are} already waiting, as many as it queues. Yours was not run; "
        f"please try again in about {retry_after} s."
    )


UNKNOWN_S = 1.0  # the time of a request whose kind has not finished yet


def retry_after(blocks: Any) -> tuple[int, int]:
    """(requests waiting, seconds until the queue has drained them): each group of requests that share a
    concurrency limit (the live training is one at a time), at the average time its requests have taken."""
    queue = blocks._queue
    drain = 0.0
    for group in queue.event_queue_per_concurrency_id.values():
        times = [queue.process_time_per_fn[e.fn] for e in group.queue if e.fn in queue.process_time_per_fn]
        seconds = sum(t.avg_time if t.count else UNKNOWN_S for t in times) + UNKNOWN_S * (len(group.queue) - len(times))
        drain = max(drain, seconds / max(1, group.concurrency_limit or 1))
    return len(queue), max(1, math.ceil(drain))


class BusyMessage:
    """ASGI middleware: Gradio's 503 for a full queue becomes a 429 with ``Retry-After`` and a clear message."""

    def __init__(self, app: ASGIApp, blocks: Any) -> None:
        self.app = app
        self.blocks = blocks

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope.get("type") != "http" or not scope.get("path", "").endswith(JOIN_PATH):
            await self.app(scope, receive, send)
            return
        full = False

        async def answer(message: Message) -> None:
            nonlocal full
            if message["type"] == "http.response.start" and message["status"] == 503:
                full = True
                return
            if not full:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                waiting, seconds = retry_after(self.blocks)
                body = json.dumps({"detail": busy_message(waiting, seconds), "error": "queue_full"}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                           (b"retry-after", str(seconds).encode())]  # fmt: skip
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, answer)
