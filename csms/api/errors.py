"""The API's one error shape, ``{"error": "<code>", "detail": "<human text>"}``, and its handlers.

``ApiError`` is raised by routes with a documented code; ``install`` maps everything else
(FastAPI's ``HTTPException`` and request validation, the CSMS errors of ``csms.errors``) to
the same shape. A station's CALLERROR (502 ``call_error``) also carries its ``code``,
``description`` and ``details``. The codes are listed in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from csms.errors import (
    CallErrorReceived,
    CallTimeout,
    ControlError,
    PayloadInvalid,
    ResponseInvalid,
    StationNotConnected,
    StoreUnavailable,
    UnknownAction,
)


class ErrorBody(BaseModel):
    """What every API error answers."""

    error: str = Field(description="a documented error code, e.g. not_connected")
    detail: str = Field(description="what went wrong, in plain words")
    code: str | None = Field(None, description="call_error: the station's OCPP error code")
    description: str | None = Field(None, description="call_error: the station's error description")
    details: dict[str, Any] | None = Field(None, description="call_error: the station's error details")
    action: str | None = Field(None, description="console actions: the OCPP action that was sent")


# the code of an HTTPException raised without one (auth, unknown routes, ...)
_CODE_BY_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 429: "too_many_requests",
    502: "call_error", 503: "store_unavailable", 504: "timeout",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in _CODE_BY_STATUS.items() if status != 405
}


class ApiError(Exception):
    """An API error with its status, documented code and text (and extra fields, see ``ErrorBody``)."""

    def __init__(
        self, status: int, error: str, detail: str, *, headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"error": self.error, "detail": self.detail, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers or None)


def code_of_status(status: int) -> str:
    return _CODE_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")


def from_control_error(exc: ControlError, *, action: str | None = None) -> ApiError:
    """The API error for a failed call to a station."""
    extra: dict[str, Any] = {"action": action} if action is not None else {}
    if isinstance(exc, StationNotConnected):
        return ApiError(409, "not_connected", str(exc), **extra)
    if isinstance(exc, UnknownAction):
        return ApiError(400, "unknown_action", str(exc), **extra)
    if isinstance(exc, PayloadInvalid):
        return ApiError(400, "invalid_payload", f"payload invalid: {exc}", **extra)
    if isinstance(exc, CallErrorReceived):
        return ApiError(
            502, "call_error", "the station answered with a CALLERROR", code=exc.code,
            description=exc.description, details=exc.details, **extra,
        )
    if isinstance(exc, ResponseInvalid):
        return ApiError(502, "invalid_response", str(exc), **extra)
    if isinstance(exc, CallTimeout):
        return ApiError(504, "timeout", str(exc), **extra)
    return ApiError(502, "call_failed", str(exc), **extra)


def plain_reason(errors: Sequence[Any]) -> tuple[str, str]:
    """``(code, text)`` for pydantic's validation errors, without its internals."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "bad_request", "the body is not valid JSON"
    reasons = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        reasons.append(f"{where}: {e.get('msg', 'invalid')}")
    return "invalid_payload", "; ".join(reasons)


def error_of(exc: BaseException) -> ApiError:
    """Any exception an API route lets through, as the API error it answers."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        return ApiError(status, code_of_status(status), str(exc.detail), headers=exc.headers)
    if isinstance(exc, RequestValidationError):
        code, text = plain_reason(exc.errors())
        return ApiError(400, code, text)
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, "store_unavailable", f"database unavailable: {exc}")
    if isinstance(exc, ControlError):
        return from_control_error(exc)
    return ApiError(500, "internal_error", "internal error")


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    return error_of(exc).response()


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one shape."""
    for kind in (ApiError, StarletteHTTPException, RequestValidationError, StoreUnavailable, ControlError):
        app.add_exception_handler(kind, _handle)
