"""The OpenAPI document as the server really answers (``/api/v1/openapi.json``).

FastAPI documents what it can see: the routes answer ``JSONResponse`` (so success bodies
would be ``{}``), errors leave through exception handlers as ``application/problem+json``
(so it invents a 422 ``HTTPValidationError`` that never happens), and the bearer token
looks like an optional header. This module rewrites the generated document once:

- every operation's success answer gets its model (:mod:`hallctl.schemas`; for the
  command routes :data:`~hallctl.schemas.COMMAND_RESPONSES`);
- every error status the operation can answer is listed with the :class:`Problem` schema
  and the ``code`` values it carries (``x-codes``; the command's own codes come from the
  command table's ``HttpRoute.errors``);
- the security schemes (HTTP bearer, ``?token=`` in the query) apply to every operation
  but ``/health`` (token optional there);
- the command routes' path parameters carry the argument model's type and limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from hallctl import commands, schemas
from hallctl import events as ev

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"
STATUS_TEXT = {
    400: "Bad request (malformed JSON, bad Content-Length)",
    401: "No token, or an unknown or revoked one",
    403: "The token's role or windows do not allow this",
    404: "Not found",
    409: "Conflict with the hall's present state",
    413: "Body larger than `[api] max_body_bytes`",
    422: "Invalid arguments, or refused by policy",
    429: "Too many requests for this token (see `Retry-After`)",
    500: "Internal error (a bug; logged)",
    503: "The store cannot write (nothing was changed) or the stream hub is full",
}
STORE = ("store_locked", "store_full", "store_error", "store_closed", "store_path")
# What any operation can answer (the body limit and CatchAll middlewares, auth, FastAPI's validation).
COMMON: dict[int, tuple[str, ...]] = {
    400: ("bad_request",),
    401: ("missing_token", "bad_token"),
    500: ("internal_error",),
}
# The command routes add: dispatch's permission checks, argument validation, the rate limit, the store.
COMMAND: dict[int, tuple[str, ...]] = {
    400: ("malformed_json",),
    403: ("forbidden",),
    413: ("body_too_large",),
    422: ("invalid_arguments",),
    429: ("rate_limited",),
    503: STORE,
}


@dataclasses.dataclass(frozen=True)
class OpDoc:
    """A route outside the command table: its success model and its own error codes by status."""

    model: Any
    errors: Mapping[int, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    media_type: str = "application/json"
    token_optional: bool = False
    # Other media types the same success may come as (a report's ``format=csv|xlsx``): type -> model.
    alternatives: Mapping[str, Any] = dataclasses.field(default_factory=dict)


QUERY: dict[int, tuple[str, ...]] = {422: ("invalid_request",)}
# Routes of other routers (the simulators under /api/v1/sim): any status a HallctlError or FastAPI's
# validation can answer; their codes are the routes' business and not enumerated.
OTHER: dict[int, tuple[str, ...]] = {403: ("forbidden",), 404: ("not_found",), 409: (), 422: ("invalid_request",)}
_FILES: dict[str, Any] = {"text/csv": str, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": bytes}
# By route name (the endpoint function's name in hallctl.http.api).
ROUTES: dict[str, OpDoc] = {  # by operation id, see operation_ids
    "health": OpDoc(schemas.Health, token_optional=True),
    "categories": OpDoc(list[schemas.Category]),
    "windows": OpDoc(list[schemas.Window]),
    "kiosk": OpDoc(schemas.Kiosk, {404: ("unknown_kiosk",), **QUERY}),
    "list_tickets": OpDoc(list[schemas.Ticket], QUERY),
    "get_ticket": OpDoc(schemas.TicketDetail, {404: ("unknown_ticket",), 503: STORE, **QUERY}),
    "window_queue": OpDoc(schemas.WindowQueue, {404: ("unknown_window",), **QUERY}),
    "stats": OpDoc(schemas.Stats, {**QUERY, 503: STORE}),
    "stats_live": OpDoc(schemas.LiveStats, {503: STORE}),
    "sensor_history": OpDoc(list[schemas.Reading], {**QUERY, 503: STORE}),
    "climate": OpDoc(list[ev.ClimateState]),
    "climate_energy": OpDoc(list[schemas.ClimateEnergyDay], {**QUERY, 503: STORE}),
    "climate_energy_csv": OpDoc(str, {**QUERY, 503: STORE}, media_type="text/csv"),
    "alerts": OpDoc(list[ev.Alert]),
    "devices": OpDoc(list[schemas.Device]),
    "sse": OpDoc(str, {429: ("too_many_streams",), 503: ("streams_full",)}, media_type="text/event-stream"),
    "calls": OpDoc(list[schemas.Call], QUERY),
    "voice": OpDoc(
        bytes,
        {
            404: ("not_called", "voice_disabled", "voice_failed", "voice_unavailable"),
            503: ("voice_unavailable",),
            **QUERY,
        },
        media_type="audio/wav",
    ),
    # hallctl/http/reports.py: format=json (the default), csv or xlsx.
    "daily_report": OpDoc(
        dict[str, Any], {403: ("forbidden",), 422: ("invalid_request", "bad_day"), 503: STORE}, alternatives=_FILES
    ),
    "monthly_report": OpDoc(dict[str, Any], {403: ("forbidden",), **QUERY, 503: STORE}, alternatives=_FILES),
    "board": OpDoc(dict[str, Any], {403: ("forbidden",), 503: STORE}),
}


def _merge(*maps: Mapping[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    out: dict[int, tuple[str, ...]] = {}
    for m in maps:
        for status, codes in m.items():
            out[status] = tuple(dict.fromkeys((*out.get(status, ()), *codes)))
    return out


def _schema_of(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of ``model`` with its definitions moved to ``defs`` (components)."""
    if model is str:
        return {"type": "string"}
    if model is bytes:
        return {"type": "string", "format": "binary"}
    schema = TypeAdapter(model).json_schema(mode="serialization", ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    if isinstance(model, type) and issubclass(model, BaseModel):
        defs[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}
    return schema


def _errors(op: dict[str, Any], errors: dict[int, tuple[str, ...]], enumerated: bool = True) -> None:
    """Problem responses by status; ``enumerated``: the codes listed are all the operation can answer."""
    responses = op.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError: never answered (the problem below is)
    for status, codes in sorted(errors.items()):
        responses[str(status)] = {
            "description": STATUS_TEXT.get(status, "Error"),
            "content": {PROBLEM: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
        if enumerated:
            responses[str(status)]["x-codes"] = list(codes)
        if codes and enumerated:
            responses[str(status)]["description"] += ". Codes: " + ", ".join(f"`{c}`" for c in codes)


def _path_params(op: dict[str, Any], cmd: commands.Command) -> None:
    """Path parameters as the argument model declares them (type, limits), not as bare strings."""
    props = cmd.args.model_json_schema().get("properties", {})
    for param in op.get("parameters", []):
        if param.get("in") == "header" and param["name"].lower() == "idempotency-key":
            # Checked by the handler (bad_idempotency_key), after the token and the arguments.
            param["schema"] = {"type": "string", "minLength": 1, "maxLength": 128}
        if param.get("in") == "path" and param["name"] in props:
            schema = dict(props[param["name"]])
            schema.pop("default", None)
            param["schema"] = schema


def body_schema(cmd: commands.Command) -> dict[str, Any] | None:
    """The args model's JSON schema without the path parameters, for OpenAPI; ``None`` when nothing is left."""
    schema = cmd.args.model_json_schema()
    path = set(cmd.http.params)
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in path}
    if not props:
        return None
    schema["properties"] = props
    required = [k for k in schema.get("required", []) if k not in path]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
    return schema


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """Build (once) the document FastAPI would, then make it truthful."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    components = doc.setdefault("components", {})
    defs: dict[str, Any] = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        defs.pop(name, None)
    _, problem_defs = models_json_schema([(schemas.Problem, "serialization")], ref_template=REF)
    defs.update(problem_defs.get("$defs", {}))
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `hallctl token add`"},
        "token": {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "The same token, for EventSource, audio and page links that cannot set headers",
        },
    }
    doc["security"] = [{"bearer": []}, {"token": []}]
    for item in doc.get("paths", {}).values():
        for op in item.values():
            cmd = commands.COMMANDS.get(op.get("x-command", ""))
            if cmd is not None:
                status = str(cmd.http.status)
                has_body = cmd.http.method != "GET"
                model = schemas.COMMAND_RESPONSES[cmd.name]
                op["responses"].pop("200", None)
                op["responses"][status] = {
                    "description": "Success",
                    "content": {"application/json": {"schema": _schema_of(model, defs)}},
                }
                _path_params(op, cmd)
                body = body_schema(cmd) if has_body else None
                if body is not None:
                    op["requestBody"] = {
                        "required": bool(body.get("required")),
                        "content": {"application/json": {"schema": body}},
                    }
                own = cmd.http.errors
                if cmd.refusal is not None:
                    own = _merge(own, {403: (cmd.refusal[0],)})
                if cmd.window_scoped:
                    own = _merge(own, {403: ("wrong_window",)})
                extra = COMMAND if has_body else {k: v for k, v in COMMAND.items() if k not in (400, 413)}
                _errors(op, _merge(COMMON, extra, own))
                continue
            spec = ROUTES.get(op.get("operationId", ""))
            if spec is None:  # the simulators: statuses declared, codes not enumerated (no x-codes)
                _errors(op, _merge(COMMON, OTHER, {503: STORE}), enumerated=False)
                continue
            ok = op["responses"].setdefault("200", {"description": "Success"})
            ok["content"] = {spec.media_type: {"schema": _schema_of(spec.model, defs)}}
            ok["content"].update({mt: {"schema": _schema_of(m, defs)} for mt, m in spec.alternatives.items()})
            errors = _merge(COMMON, spec.errors)
            if spec.token_optional:
                op["security"] = [{}, {"bearer": []}, {"token": []}]
                errors.pop(401, None)
            _errors(op, {k: v for k, v in errors.items() if v})
    app.openapi_schema = doc
    return doc
