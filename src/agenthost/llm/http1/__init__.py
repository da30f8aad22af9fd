"""A lean HTTP/1.1 client for the model server: one POST per connection at a time, streamed.

``OpenAIChatModel`` sends one request per model call and reads the reply as
it streams, one network read per token. aiohttp did this before, and per
token it ran some ten Python frames between the socket and the reader (its
protocol, its stream reader's feed, chunk bookkeeping, ``readany``, its waits
and timers), and on Python 3.11 it sent each request's body from a task of its
own, a turn of the event loop late. Here a read is the protocol's
``data_received``, httptools' C parser, and one ``on_body`` call that hands
the bytes to the one reader and wakes it; the request (head and body) is
written at once by the caller, in one write.

The server's name is looked up once per ``DNS_TTL_SECONDS`` for every new
connection (a burst of them made one lookup each, queued in the loop's small
thread pool), and each of its addresses is tried in turn.

Connections are kept alive in a pool per server (LIFO, so the most recently
used, least likely to have been closed by the server, goes first), up to
``max_connections`` open at once; callers beyond that wait for one. An idle
connection the server closes is dropped when its end arrives; one that the
server closed while our request was on its way (the keep-alive race: nothing
of the reply arrived) is retried once on a new connection, since a server
closes an idle connection only before reading a request on it.

Supported: ``http`` and ``https`` (the system's CA store, or an
``ssl.SSLContext``), replies framed by ``Content-Length``, chunked or by the
end of the connection, and ``gzip``/``deflate`` content encodings (``identity``
is asked for). Not: proxies, redirects (a 3xx is returned as it is), HTTP/2.
Failures raise ``HttpTransportError`` (an ``OSError``: refused, reset, TLS)
or ``TimeoutError`` (connect timeout).
"""

from agenthost.llm.http1.client import DNS_TTL_SECONDS, KEEPALIVE_SECONDS, HttpClient, Target
from agenthost.llm.http1.connection import (
    MAX_HEAD_BYTES,
    READ_HIGH_WATER,
    HttpResponse,
    HttpTransportError,
)

__all__ = [
    "DNS_TTL_SECONDS",
    "KEEPALIVE_SECONDS",
    "MAX_HEAD_BYTES",
    "READ_HIGH_WATER",
    "HttpClient",
    "HttpResponse",
    "HttpTransportError",
    "Target",
]
