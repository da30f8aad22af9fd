"""agenthost: run an AI agent (a model, a system prompt, typed tools, memory) as a service.

The public API is ``__all__`` below; test doubles live in ``agenthost.testing``.
"""

from agenthost.agent.context import ContextRequest, TurnContext
from agenthost.agent.definition import Agent
from agenthost.agent.loop import (
    AgentEvent,
    CitationsFound,
    MessageCompleted,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnOptions,
    TurnResult,
    run_turn,
    stream_turn,
)
from agenthost.errors import AgentHostError
from agenthost.llm.base import ChatModel, ModelRequest, TextDelta, ToolSpec, UsageReported
from agenthost.llm.registry import resolve_model
from agenthost.messages import Citation, Message, ToolCall, Usage
from agenthost.settings import Settings
from agenthost.tools.base import CitingTool, Tool, ToolResult
from agenthost.tools.function import FunctionTool, tool
from agenthost.tools.toolset import ToolOutcome, Toolset

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentHostError",
    "ChatModel",
    "Citation",
    "CitationsFound",
    "CitingTool",
    "ContextRequest",
    "FunctionTool",
    "Message",
    "MessageCompleted",
    "ModelRequest",
    "Settings",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolOutcome",
    "ToolResult",
    "ToolSpec",
    "Toolset",
    "TurnCompleted",
    "TurnContext",
    "TurnOptions",
    "TurnResult",
    "Usage",
    "UsageReported",
    "__version__",
    "resolve_model",
    "run_turn",
    "stream_turn",
    "tool",
]
