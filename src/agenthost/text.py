"""``whole_characters``: text that UTF-8 can carry, from text that may hold halves of pairs.

A Python string can hold half of a surrogate pair: a model server's JSON may
send one (``"\\ud83c"`` in one chunk, ``"\\udf89"`` in the next), and bytes
read with ``surrogateescape`` become them. UTF-8 cannot carry them, so an SSE
frame, a JSON response or a database would refuse the text. Where text enters
agenthost from outside (a reply, a tool call, a tool's result) it is mended
once: a pair is joined into its character, a lone half becomes U+FFFD.
"""

from __future__ import annotations

import re

__all__ = ["whole_characters"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR_OR_HALF = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")


def whole_characters(text: str) -> str:
    """``text`` with every pair joined and every lone half U+FFFD; ``text`` itself if whole."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _PAIR_OR_HALF.sub(_whole, text)


def _whole(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) == 1:
        return "\ufffd"
    return chr(0x10000 + ((ord(found[0]) - 0xD800) << 10) + (ord(found[1]) - 0xDC00))
