"""``HttpClient``: requests on kept-alive connections, replies as they stream, every way one ends.

The server is a scripted loopback server speaking raw HTTP/1.1, so each test
says byte for byte what the model server sends. Every test runs on asyncio's
loop and on uvloop's (their transports differ).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct

import pytest
import trustme

from agenthost.llm import http1
from agenthost.llm.http1 import HttpClient, HttpResponse, HttpTransportError, Target
from tests.support.loops import on_each_loop
from tests.support.raw_http import (
    CHUNKED_HEAD,
    END_OF_CHUNKS,
    ScriptedServer,
    chunked,
    hangs_up,
    ok,
    sends,
)


def client_for(
    server: ScriptedServer, *, max_connections: int = 10, ssl_context: ssl.SSLContext | None = None
) -> HttpClient:
    return HttpClient(
        server.url(),
        {"Authorization": "Bearer k"},
        connect_timeout=5.0,
        max_connections=max_connections,
        ssl_context=ssl_context,
    )


async def read_into(response: HttpResponse, received: list[bytes]) -> None:
    """Take the body as it comes, piece by piece, to its end (or the connection's failure)."""
    while (data := response.take()) is not None:
        received.append(data)
        if not data:
            await response.wait()


async def body_of(response: HttpResponse) -> bytes:
    try:
        return await response.read(10 * 1024 * 1024)
    finally:
        response.release()


@on_each_loop
async def test_requests_reuse_one_kept_alive_connection() -> None:
    async with ScriptedServer(sends(ok(b"one")), sends(ok(b"two")), sends(ok(b"three"))) as server:
        client = client_for(server)
        bodies = [await body_of(await client.post(b'{"n":%d}' % n)) for n in range(3)]
        await client.aclose()
    assert bodies == [b"one", b"two", b"three"]
    assert server.connections == 1
    head, body = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Authorization: Bearer k" in lines
    assert "Content-Length: 7" in lines
    assert "Accept-Encoding: identity" in lines
    assert body == b'{"n":0}'


@on_each_loop
async def test_a_chunked_reply_is_handed_over_as_each_chunk_arrives() -> None:
    second_chunk = asyncio.Event()

    async def streams(writer: asyncio.StreamWriter) -> bool:
        writer.write(CHUNKED_HEAD + chunked(b"data: 1\n\n"))
        await second_chunk.wait()
        writer.write(chunked(b"data: 2\n\n") + END_OF_CHUNKS)
        return True

    async with ScriptedServer(streams, sends(ok(b"again"))) as server:
        client = client_for(server)
        response = await client.post(b"{}")
        assert response.status == 200
        assert response.headers["transfer-encoding"] == "chunked"
        while not (first := response.take()):
            await response.wait()
        assert first == b"data: 1\n\n"
        assert response.take() == b""  # more to come: not the end (None)
        second_chunk.set()
        assert await body_of(response) == b"data: 2\n\n"
        assert await body_of(await client.post(b"{}")) == b"again"
        await client.aclose()
    assert server.connections == 1


@on_each_loop
async def test_a_reply_framed_by_the_end_of_the_connection_ends_with_it() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: [DONE]\n\n"
    async with ScriptedServer(sends(unframed, keep=False), sends(ok(b"next"))) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"data: [DONE]\n\n"
        assert await body_of(await client.post(b"{}")) == b"next"
        await client.aclose()
    assert server.connections == 2


@on_each_loop
async def test_a_reply_framed_by_the_connection_and_cut_by_a_reset_is_a_failure() -> None:
    async def resets(writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with a zero linger: a reset, not an end
        return False

    async with ScriptedServer(resets) as server:
        client = client_for(server)
        response = await client.post(b"{}")
        received: list[bytes] = []
        with pytest.raises(HttpTransportError, match="closed the connection"):
            await read_into(response, received)
        assert b"".join(received) == b"data: 1\n\n"
        response.release()
        await client.aclose()


@on_each_loop
async def test_a_reply_that_says_connection_close_is_not_reused() -> None:
    async with ScriptedServer(sends(ok(b"a", "Connection: close")), sends(ok(b"b"))) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"a"
        assert await body_of(await client.post(b"{}")) == b"b"
        await client.aclose()
    assert server.connections == 2


@on_each_loop
async def test_a_kept_connection_the_server_closed_on_our_request_is_retried_on_a_new_one() -> None:
    async with ScriptedServer(sends(ok(b"first")), hangs_up(), sends(ok(b"retried"))) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"first"
        assert await body_of(await client.post(b'{"x":1}')) == b"retried"
        await client.aclose()
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"{}", b'{"x":1}', b'{"x":1}']


@on_each_loop
async def test_a_new_connection_closed_before_any_reply_is_an_error_not_retried() -> None:
    async with ScriptedServer(hangs_up(), sends(ok(b"never"))) as server:
        client = client_for(server)
        with pytest.raises(HttpTransportError, match="closed the connection"):
            await client.post(b"{}")
        await client.aclose()
    assert len(server.requests) == 1


@on_each_loop
async def test_a_connection_dropped_mid_reply_keeps_what_came_and_then_fails() -> None:
    async with ScriptedServer(sends(CHUNKED_HEAD + chunked(b"data: 1\n\n"), keep=False)) as server:
        client = client_for(server)
        response = await client.post(b"{}")
        received: list[bytes] = []
        with pytest.raises(HttpTransportError, match="closed the connection"):
            await read_into(response, received)
        assert b"".join(received) == b"data: 1\n\n"  # all that came, and no end of the body
        with pytest.raises(HttpTransportError, match="closed the connection"):
            await response.read(1024)
        response.release()
        await client.aclose()


@on_each_loop
async def test_callers_over_max_connections_wait_for_a_connection() -> None:
    release = asyncio.Event()

    async def held(writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(ok(b"done"))
        return True

    async with ScriptedServer(held, held, held) as server:
        client = client_for(server, max_connections=2)
        posts = [asyncio.ensure_future(client.post(b"{}")) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert server.connections == 2
        assert len(server.requests) == 2  # the third waits for a connection
        release.set()
        bodies = [await body_of(await post) for post in posts]
        await client.aclose()
    assert bodies == [b"done"] * 3
    assert server.most_open == 2


@on_each_loop
async def test_a_waiter_woken_and_then_cancelled_passes_the_connection_on() -> None:
    async with ScriptedServer(sends(ok(b"a")), sends(ok(b"c"))) as server:
        client = client_for(server, max_connections=1)
        first = await client.post(b"{}")
        woken = asyncio.ensure_future(client.post(b"{}"))
        later = asyncio.ensure_future(client.post(b"{}"))
        await asyncio.sleep(0.05)  # both wait for the one connection
        assert await body_of(first) == b"a"  # released: the first waiter is woken...
        woken.cancel()  # ...and cancelled before it could run
        with pytest.raises(asyncio.CancelledError):
            await woken
        assert await body_of(await asyncio.wait_for(later, 5)) == b"c"
        await client.aclose()
    assert server.connections == 1


@on_each_loop
async def test_a_cancelled_request_gives_its_connection_slot_back() -> None:
    never = asyncio.Event()

    async def silent(writer: asyncio.StreamWriter) -> bool:
        await never.wait()
        return False

    async with ScriptedServer(silent, sends(ok(b"served"))) as server:
        client = client_for(server, max_connections=1)
        stuck = asyncio.ensure_future(client.post(b"{}"))
        await asyncio.sleep(0.05)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        served = await asyncio.wait_for(client.post(b"{}"), 5)
        assert await body_of(served) == b"served"
        await client.aclose()
        never.set()
    assert server.connections == 2


@on_each_loop
async def test_a_gzip_reply_is_decoded_and_an_unknown_encoding_refused() -> None:
    packed = gzip.compress(b"data: " + b"x" * 5000 + b"\n\n")
    async with ScriptedServer(
        sends(ok(packed, "Content-Encoding: gzip")), sends(ok(b"?", "Content-Encoding: br"))
    ) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"data: " + b"x" * 5000 + b"\n\n"
        with pytest.raises(HttpTransportError, match="unsupported encoding 'br'"):
            await client.post(b"{}")
        await client.aclose()


@on_each_loop
async def test_what_is_not_http_is_a_transport_error() -> None:
    async with ScriptedServer(sends(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as server:
        client = client_for(server)
        with pytest.raises(HttpTransportError, match="not valid HTTP"):
            await client.post(b"{}")
        await client.aclose()


@on_each_loop
async def test_reply_headers_over_the_limit_are_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"p" * (http1.MAX_HEAD_BYTES + 10)
    async with ScriptedServer(sends(huge)) as server:
        client = client_for(server)
        with pytest.raises(HttpTransportError, match="too large"):
            await client.post(b"{}")
        await client.aclose()


@on_each_loop
async def test_an_interim_100_continue_is_skipped() -> None:
    async with ScriptedServer(sends(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"real"))) as server:
        client = client_for(server)
        response = await client.post(b"{}")
        assert response.status == 200
        assert await body_of(response) == b"real"
        await client.aclose()


@on_each_loop
async def test_a_large_body_read_slowly_pauses_reading_and_arrives_whole() -> None:
    big = bytes(range(256)) * 12_000  # 3 MB: over the read high-water mark
    async with ScriptedServer(sends(ok(big))) as server:
        client = client_for(server)
        response = await client.post(b"{}")
        await asyncio.sleep(0.2)  # the whole body could have arrived meanwhile
        held = response._connection.buffered
        assert http1.READ_HIGH_WATER < held < 2 * http1.READ_HIGH_WATER  # paused, not all
        assert await body_of(response) == big
        await client.aclose()


@on_each_loop
async def test_https_with_the_servers_ca_trusted_and_refused_without_it() -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with ScriptedServer(sends(ok(b"secret")), tls=server_tls) as server:
        client = client_for(server, ssl_context=trusting)
        assert await body_of(await client.post(b"{}")) == b"secret"
        await client.aclose()
        untrusting = client_for(server)  # the system's CAs: they never signed this one
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.post(b"{}")
        await untrusting.aclose()


@on_each_loop
async def test_closing_the_client_closes_its_idle_connections() -> None:
    async with ScriptedServer(sends(ok(b"x"))) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"x"
        await client.aclose()
        for _ in range(100):
            if server.ended:
                break
            await asyncio.sleep(0.01)
        assert server.ended == [1]
        with pytest.raises(HttpTransportError, match="closed"):
            await client.post(b"{}")


@on_each_loop
async def test_a_connection_idle_past_the_keepalive_time_is_not_reused() -> None:
    async with ScriptedServer(sends(ok(b"1")), sends(ok(b"2"))) as server:
        client = client_for(server)
        assert await body_of(await client.post(b"{}")) == b"1"
        client._idle[0].idle_since -= http1.KEEPALIVE_SECONDS
        assert await body_of(await client.post(b"{}")) == b"2"
        await client.aclose()
    assert server.connections == 2


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpClient(
            "http://h/v1",
            {"Authorization": "Bearer k\r\nX-Evil: 1"},
            connect_timeout=1.0,
            max_connections=1,
        )


def test_only_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="not an http") as refused:
        HttpClient("ftp://user:secret@h/v1", {}, connect_timeout=1.0, max_connections=1)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://h/v1/x", Target("h", 80, False, "/v1/x", "h")),
        ("https://api.example/v1/x", Target("api.example", 443, True, "/v1/x", "api.example")),
        (
            "http://h:8000/v1/x?api-version=2",
            Target("h", 8000, False, "/v1/x?api-version=2", "h:8000"),
        ),
        ("http://[::1]:9/x", Target("::1", 9, False, "/x", "[::1]:9")),
        ("http://user:pw@h/x", Target("h", 80, False, "/x", "h")),
    ],
)
def test_urls_become_targets(url: str, target: Target) -> None:
    assert Target.parse(url) == target


@on_each_loop
async def test_new_connections_share_one_lookup_of_the_servers_name() -> None:
    async with ScriptedServer(*[sends(ok(b"x")) for _ in range(11)]) as server:
        client = HttpClient(
            f"http://localhost:{server.port}/v1", {}, connect_timeout=5.0, max_connections=10
        )
        looked_up: list[str] = []
        look_up = client._look_up

        async def counted(loop: asyncio.AbstractEventLoop) -> list[tuple[str, int]]:
            looked_up.append("localhost")
            return await look_up(loop)

        client._look_up = counted  # type: ignore[method-assign]
        responses = await asyncio.gather(*(client.post(b"{}") for _ in range(5)))
        assert [await body_of(response) for response in responses] == [b"x"] * 5
        assert server.connections == 5  # five new connections
        assert looked_up == ["localhost"]
        client._addresses_until = 0.0  # as if DNS_TTL_SECONDS had passed
        responses = await asyncio.gather(*(client.post(b"{}") for _ in range(6)))
        assert [await body_of(response) for response in responses] == [b"x"] * 6
        assert server.connections == 6  # the five kept ones, and one new
        assert looked_up == ["localhost", "localhost"]
        await client.aclose()


@on_each_loop
async def test_each_address_is_tried_until_one_takes_the_connection() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]  # nothing listens here once closed
    async with ScriptedServer(sends(ok(b"second")), sends(ok(b"kept"))) as server:
        client = client_for(server)
        loop = asyncio.get_running_loop()
        client._addresses_found = [("127.0.0.1", dead), ("127.0.0.1", server.port)]
        client._addresses_until = loop.time() + 60
        assert await body_of(await client.post(b"{}")) == b"second"
        client._addresses_found = [("127.0.0.1", dead)]
        kept, refused = await asyncio.gather(
            client.post(b"{}"), client.post(b"{}"), return_exceptions=True
        )
        assert isinstance(kept, HttpResponse)
        assert await body_of(kept) == b"kept"
        assert isinstance(refused, ConnectionRefusedError)
        assert client._addresses_until == 0.0  # looked up again next time
        await client.aclose()
