"""JSON schemas from elsewhere (MCP tools) made strict only where nothing changes."""

from __future__ import annotations

from core.tools.schema import drop_nulls, strict_from_json


def test_optional_properties_become_nullable_and_their_nulls_are_dropped_again() -> None:
    schema = {
        "type": "object",
        "title": "addArguments",
        "properties": {
            "a": {"type": "integer", "title": "A"},
            "b": {"type": "integer", "default": 2},
            "opts": {
                "type": "object",
                "properties": {"deep": {"type": "string"}},
                "required": [],
            },
        },
        "required": ["a"],
    }
    attempt = strict_from_json(schema)
    assert attempt.strict
    assert attempt.schema == {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "Default: 2."},
            "opts": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"deep": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                        "required": ["deep"],
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ]
            },
        },
        "required": ["a", "b", "opts"],
        "additionalProperties": False,
    }
    sent = {"a": 1, "b": None, "opts": {"deep": None}}
    assert drop_nulls(sent, schema) == {"a": 1, "opts": {}}


def test_what_strict_mode_cannot_say_goes_out_as_is_with_the_reason() -> None:
    cases = {
        "arguments.name: uses minLength": {
            "properties": {"name": {"type": "string", "minLength": 2}}
        },
        "arguments: a free-form object": {"additionalProperties": True, "properties": {}},
        "arguments.x: optional and nullable": {"properties": {"x": {"type": ["string", "null"]}}},
        "arguments.y: uses allOf": {
            "properties": {"y": {"allOf": [{"type": "string"}]}},
            "required": ["y"],
        },
        "arguments.z: format 'uri'": {"properties": {"z": {"type": "string", "format": "uri"}}},
    }
    for reason, body in cases.items():
        schema = {"type": "object", **body}
        attempt = strict_from_json(schema)
        assert not attempt.strict and attempt.reason.startswith(reason), attempt.reason
        assert attempt.schema == schema, "never rewritten"
    assert strict_from_json({"anyOf": []}).reason == "the root is not an object"
