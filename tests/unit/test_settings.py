"""A model's settings checked against its catalog schema (compact form or JSON Schema)."""

from __future__ import annotations

import pytest

from rendio_backend import InvalidRequest
from rendio_backend._core.settings import settings_json_schema, validate_settings

VEO = {"duration": ["8s", "6s"], "generate_audio": [True, False]}


def test_the_compact_form_allows_listed_values_only() -> None:
    validate_settings({}, VEO)
    validate_settings({"duration": "6s", "generate_audio": False}, VEO)
    with pytest.raises(InvalidRequest) as wrong:
        validate_settings({"duration": "9s"}, VEO)
    assert wrong.value.details == {"field": "settings.duration"}
    assert "['8s', '6s']" in wrong.value.message
    with pytest.raises(InvalidRequest) as unknown:
        validate_settings({"duration": "8s", "fps": 60}, VEO)
    assert unknown.value.details == {"field": "settings.fps"}


def test_a_json_schema_is_used_as_it_is_but_closed() -> None:
    schema = {"type": "object", "properties": {"seed": {"type": "integer", "minimum": 0}}}
    assert settings_json_schema(schema)["additionalProperties"] is False
    validate_settings({"seed": 3}, schema)
    with pytest.raises(InvalidRequest) as negative:
        validate_settings({"seed": -1}, schema)
    assert negative.value.details == {"field": "settings.seed"}
    with pytest.raises(InvalidRequest):
        validate_settings({"other": 1}, schema)
