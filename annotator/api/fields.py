"""Fields the API's responses share."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class Number(serializers.FloatField):
    """A number in the schema; in the response, the value unchanged (an int stays an int)."""

    def to_representation(self, value: Any) -> Any:
        return value
