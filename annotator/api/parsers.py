"""The API's JSON parser: DRF's, with a limit on nesting, so that a body nested too deeply is a 400
that says so instead of a ``RecursionError`` (a 500) in the parser or in whatever walks the data next."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: Levels of arrays and objects a request body may nest; the deepest real body has 3
#: (``{"labels": [{"name": ...}]}``).
MAX_DEPTH = 32
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_DEPTH} levels of arrays and objects."


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists and dicts more than ``limit`` levels deep (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    """``application/json`` bodies, refused with a 400 when nested more than ``MAX_DEPTH`` levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # deeper than the interpreter's stack: the decoder gave up
            raise ParseError(TOO_DEEP) from exc
        if _deeper_than(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
