"""Tools: the ``Tool`` seam, ``@tool`` for typed functions, toolsets and built-in tools."""
