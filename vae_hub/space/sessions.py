"""Which page sessions have switched models: the page's first view must not land after a switch.

The page fills its model-dependent parts (Explore, the card, ...) with a load event for the default model. A visitor
who picks another model in the first second can have that switch finish first; the first view, arriving last,
would then show the default model under the new model's name. A switch marks its session; the first view checks the
mark when it has its result, and sends nothing if a switch came first. Both run on the server and their results
reach the page in the order they finish, so the page ends on the switch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MAX_SESSIONS = 4096  # only the first seconds of a page matter: the oldest marks are dropped


class SwitchedSessions:
    """A bounded set of session ids (Gradio's ``request.session_hash``) that have asked for a model."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()  # requests run in several worker threads

    def mark(self, session: str | None) -> None:
        if session is None:
            return
        with self._lock:
            self._ids[session] = None
            self._ids.move_to_end(session)
            while len(self._ids) > self.limit:
                self._ids.popitem(last=False)

    def __contains__(self, session: object) -> bool:
        return session in self._ids
