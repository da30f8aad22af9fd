"""Public test doubles, so users test their own agents the way agenthost tests its own.

from agenthost.testing import Reply, call_tool, scripted

model = scripted(Reply(tool_calls=(call_tool("calculator", {"expression": "6*7"}),)),
                 "The answer is 42.")
result = await run_turn(my_agent, model, [], Message.user("What is 6 times 7?"))
assert result.text == "The answer is 42."
assert model.requests[1].messages[-1].content == "42"
"""

from agenthost.clock import ManualClock
from agenthost.llm.function import (
    FunctionModel,
    Reply,
    ReplyFunction,
    TestModel,
    call_tool,
    scripted,
    simple_token_count,
)
from agenthost.stores.memory import MemorySessionStore

__all__ = [
    "FunctionModel",
    "ManualClock",
    "MemorySessionStore",
    "Reply",
    "ReplyFunction",
    "TestModel",
    "call_tool",
    "scripted",
    "simple_token_count",
]
