"""``GET /metrics``: every metric in the Prometheus text format, summed over the workers.

Outside authentication like ``/health``: keep it off the public network (a
proxy rule, or a network policy that lets only Prometheus reach it).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from agenthost.server.deps import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(services: ServicesDep) -> Response:
    """The metrics listed in docs/operations.md, for Prometheus to scrape."""
    exported = services.telemetry.metrics
    body = await asyncio.to_thread(exported.render)  # reads every worker's files
    return Response(body, media_type=exported.content_type)
