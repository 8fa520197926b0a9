"""A model's generation settings: the catalog's `settings_schema` as a JSON Schema.

The catalog keeps the seed's compact form, `{"duration": ["8s", "6s"], ...}` (each key
and its allowed values); a stored schema that already is a JSON Schema (it has `type`
or `properties`) is used as it is. Unknown keys are refused either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..errors import InvalidRequest


def settings_json_schema(settings_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema that a request's `settings` object must satisfy."""
    if "type" in settings_schema or "properties" in settings_schema:
        return {"additionalProperties": False, **settings_schema}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: {"enum": list(values)} if isinstance(values, list) else values
                       for key, values in settings_schema.items()},
    }


@lru_cache(maxsize=256)
def _validator(settings_schema_json: str) -> Draft202012Validator:
    # Building a validator costs more than using it: one per distinct schema.
    return Draft202012Validator(settings_json_schema(json.loads(settings_schema_json)))


def validate_settings(settings: Mapping[str, Any], settings_schema: Mapping[str, Any]) -> None:
    """InvalidRequest naming the first offending field (`settings.<key>`)."""
    validator = _validator(json.dumps(settings_schema, sort_keys=True))
    error = best_match(validator.iter_errors(dict(settings)))
    if error is None:
        return
    if error.validator == "additionalProperties":
        unknown = sorted(set(settings) - set(error.schema.get("properties", {})))
        field = f"settings.{unknown[0]}" if unknown else "settings"
        message = f"{field} is not a setting of this model"
    else:
        path = ".".join(str(part) for part in error.absolute_path)
        field = f"settings.{path}" if path else "settings"
        allowed = error.schema.get("enum") if isinstance(error.schema, dict) else None
        message = (f"{field} must be one of {allowed}" if error.validator == "enum" and allowed
                   else f"{field}: {error.message}")
    raise InvalidRequest(message, details={"field": field})
