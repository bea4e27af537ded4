"""An httpx transport that sends requests through aiohttp's connection pool.

httpx's own pool (httpcore) checks every pooled connection each time a request enters or
leaves it, through anyio's typed attributes and a socket poll per connection: with 16
requests in flight that is about 1 ms of CPU per request, half of what a gateway turn costs
(BENCHMARKS.md, Gateway). aiohttp's pool does the same work in about a tenth of that, so
the gateway, which keeps many calls to one upstream in flight, sends them this way
(``connection_pool: aiohttp`` on the OpenAI-compatible and Anthropic clients). The model
clients keep httpx's request and response API; only the wire moves.

aiohttp (in tether's ``server`` extra) is imported when the first request is sent. Its
connections belong to the event loop that opened them, so the transport serves one loop, the
first to send, until it is closed; a call from another loop is refused with a ConfigError
(code that runs a new loop per call, like ``Guardrails.chat_sync``, keeps httpx's pool).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from tether.errors import ConfigError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport"]

_CHUNK_BYTES = 64 * 1024


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:
        raise ConfigError(
            "connection_pool 'aiohttp' needs aiohttp: pip install 'tether[server]' "
            "(or pip install aiohttp), or use connection_pool 'httpx'"
        ) from exc
    return aiohttp


@contextlib.contextmanager
def _as_httpx(aiohttp: Any, request: httpx.Request) -> Iterator[None]:
    """aiohttp's errors as the httpx errors the model clients retry or report."""
    try:
        yield
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        raise httpx.NetworkError(str(exc), request=request) from exc
    except aiohttp.ClientResponseError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body read as httpx reads a stream; closing it frees the connection."""

    def __init__(
        self, module: Any, response: aiohttp.ClientResponse, request: httpx.Request
    ) -> None:
        self._module = module
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._module, self._request):
            async for chunk in self._response.content.iter_chunked(_CHUNK_BYTES):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send an httpx client's requests over aiohttp (see the module docstring).

    ``max_connections`` caps the pool; ``keepalive_s`` is how long an idle connection is
    kept. Timeouts are the httpx client's: its connect and read limits apply per request
    (aiohttp has no separate limit on waiting for a pooled connection or on writing).
    """

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 15.0) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aiohttp: Any = None  # the module, imported on the first request

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed:
            if self._loop is not loop:
                raise ConfigError(
                    "connection_pool 'aiohttp' serves the one event loop that first used it, "
                    "and this call comes from another (asyncio.run per call, or chat_sync); "
                    "use connection_pool 'httpx' for that, or keep one loop running"
                )
            return self._session
        aiohttp = self._aiohttp = self._aiohttp or _aiohttp()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=self.keepalive_s
            ),
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
            skip_auto_headers=("User-Agent",),  # httpx's headers are sent as they are
        )
        self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._client()
        aiohttp = self._aiohttp
        limits = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.get("connect"), sock_read=limits.get("read")
        )
        raw_headers = request.headers.raw
        with _as_httpx(aiohttp, request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers],
                data=request.content,
                allow_redirects=False,
                timeout=timeout,
            )
        return httpx.Response(
            status_code=response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_Body(aiohttp, response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
