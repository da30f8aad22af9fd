"""``GET /agents``: the agents this server hosts, with their tools."""

from __future__ import annotations

from fastapi import APIRouter

from agenthost.server.deps import ServicesDep
from agenthost.server.schemas import AgentList, AgentPublic, ToolPublic

router = APIRouter(tags=["agents"])


@router.get("/agents", response_model=AgentList)
async def list_agents(services: ServicesDep) -> AgentList:
    """Each agent with its description and tools (the tools the model is offered)."""
    model = services.core.model
    registry = services.core.agents
    return AgentList(
        model=model.model_id,
        agents=[
            AgentPublic(
                name=agent.name,
                description=agent.description,
                default=agent.name == registry.default,
                tools=[
                    ToolPublic(name=t.name, description=t.description, parameters=t.parameters)
                    for t in agent.tools
                ]
                if model.supports_tools
                else [],
            )
            for agent in registry
        ],
    )
