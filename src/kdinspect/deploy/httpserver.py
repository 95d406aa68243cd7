"""The uvicorn server ``kdinspect serve`` runs: h11 with an idle timeout on every connection.

Stock uvicorn times out idle keep-alive connections only after a response; a connection that never sends a request
(or stops in the middle of its headers or body) is held for ever, so a few hundred of them exhaust the process.
:class:`IdleTimeoutH11Protocol` closes a connection whose request headers are not complete ``idle_timeout`` seconds
after the server started waiting for them (when it connected or after the previous response; trickling bytes does
not extend it), or whose body sends nothing for ``idle_timeout`` seconds (the app also answers a body that stalls
or trickles with 408: :mod:`kdinspect.deploy.uploads`). A request being processed is never cut off.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["IdleTimeoutH11Protocol", "server_config"]


class IdleTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a per-connection idle timeout (class attribute, set by :func:`server_config`)."""

    idle_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._last_data = self._waiting_since = self.loop.time()
        self._idle_handle: asyncio.TimerHandle | None = self.loop.call_later(self.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        super().connection_lost(exc)

    def _check_idle(self) -> None:
        self._idle_handle = None
        if self.transport.is_closing():
            return
        now, cycle = self.loop.time(), self.cycle
        if cycle is None or cycle.response_complete:  # waiting for the next request's headers
            waited = now - self._waiting_since
        elif cycle.more_body:  # waiting for the body
            waited = now - self._last_data
        else:  # the app is working on it
            waited = 0.0
        if waited >= self.idle_timeout:
            self.transport.close()
            return
        self._idle_handle = self.loop.call_later(max(0.05, self.idle_timeout - waited), self._check_idle)


def server_config(app: Any, host: str, port: int, idle_timeout: float = 10.0, **kwargs: Any) -> uvicorn.Config:
    """uvicorn settings for the service: h11 with :class:`IdleTimeoutH11Protocol`, keep-alive ``min(5, idle)``."""
    protocol = type("IdleTimeoutH11", (IdleTimeoutH11Protocol,), {"idle_timeout": float(idle_timeout)})
    kwargs.setdefault("log_level", "warning")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=max(1, int(min(5.0, idle_timeout))),
        **kwargs,
    )
