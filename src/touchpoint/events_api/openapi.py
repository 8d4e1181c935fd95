"""The OpenAPI document, built from the same pydantic models that validate requests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from touchpoint.events_api import schemas
from touchpoint.events_api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

_EVENT_MODELS = (schemas.CustomerUpserted, schemas.OrderCreated, schemas.OrderStatusChanged,
                 schemas.CartUpdated, schemas.CartCleared, schemas.ProductViewed, schemas.StockChanged)


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in _EVENT_MODELS],
                                 ref_template="#/components/schemas/{model}")
    components = defs.get("$defs", {})
    event_ref = {"oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in _EVENT_MODELS],
                 "discriminator": {"propertyName": "type"}}
    components["StoreEvent"] = event_ref
    components["Batch"] = {"type": "object", "required": ["events"], "additionalProperties": False,
                           "properties": {"events": {"type": "array", "minItems": 1,
                                                     "items": {"$ref": "#/components/schemas/StoreEvent"}}}}
    components["Error"] = {"type": "object", "properties": {
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": ["integer", "null"], "description": "position in the batch"},
            "field": {"type": "string"}, "message": {"type": "string"}}}}}}
    signed = [
        {"name": TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "integer"},
         "description": "Unix seconds; refused when more than 5 minutes off"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
         "description": 'sha256=hex(HMAC-SHA256(secret, "<timestamp>." + raw body))'},
    ]
    refused = {"400": _error("Not JSON, or not an event/batch"),
               "401": _error("Unsigned, stale or bad signature"),
               "413": _error("Body too large"), "422": _error("An invalid event: index and field named")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Touchpoint store events API", "version": "1"},
        "paths": {
            "/api/v1/events": {"post": {
                "summary": "Push one event, or a batch applied all-or-nothing",
                "description": "Idempotent by event id: a repeated id is acknowledged as a duplicate.",
                "parameters": signed,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/StoreEvent"}, {"$ref": "#/components/schemas/Batch"}]}}}},
                "responses": {"200": {"description": "Applied (or duplicates acknowledged)", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "applied": {"type": "integer"}, "duplicates": {"type": "integer"},
                        "results": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"},
                            "status": {"enum": ["applied", "duplicate"]}}}}}}}}}, **refused},
            }},
            "/api/v1/link-tokens": {"post": {
                "summary": "Issue a one-time account-link token for /start link_<token>",
                "parameters": signed,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["customer_id"],
                    "properties": {"customer_id": {"type": "string"}}}}}},
                "responses": {"200": {"description": "start_payload and expires_at", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "start_payload": {"type": "string"}, "expires_at": {"type": "string"}}}}}},
                    **refused},
            }},
        },
        "components": {"schemas": components},
    }
