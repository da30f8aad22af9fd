"""The agent core: agent definitions, the loop, and the context window. No web imports."""
