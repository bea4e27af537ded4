"""The one exception mapper: every error the gateway answers with is OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, made here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from tether.errors import (
    FileProblemsError,
    ModelError,
    ModelHTTPError,
    ModelTimeoutError,
    StoreError,
    StoreUnavailableError,
    TetherError,
    UserError,
)
from tether.policy._loader import format_path

__all__ = ["ApiError", "error_body", "error_response", "install_error_handlers", "to_api_error"]

log = logging.getLogger("tether.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


class ApiError(Exception):
    """An HTTP error answer: status, message, and OpenAI's ``type``/``param``/``code``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})


def error_body(error: ApiError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)


def to_api_error(exc: BaseException, request: Request | None = None) -> ApiError:
    """What the client is told about ``exc``."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc.errors())
    if isinstance(exc, ValidationError):
        return _validation_error(exc.errors())
    if isinstance(exc, HTTPException):
        return _http_error(exc, request)
    if isinstance(exc, FileProblemsError):
        return ApiError(400, "\n".join(str(p) for p in exc.problems), code="invalid_policy")
    if isinstance(exc, UserError):
        return ApiError(400, str(exc))
    if isinstance(exc, ModelError):
        timed_out = (
            isinstance(exc, ModelTimeoutError)
            or (isinstance(exc, ModelHTTPError) and exc.status == 504)
            or "timed out" in str(exc)  # the OpenAI-compatible adapter's own time limit
        )
        return ApiError(
            504 if timed_out else 502,
            f"the upstream model failed: {exc}",
            code="upstream_timeout" if timed_out else "upstream_error",
        )
    if isinstance(exc, StoreUnavailableError):
        return ApiError(503, "the gateway's database is unreachable; try again shortly")
    if isinstance(exc, StoreError):
        log.error("store error: %s", exc)
        return ApiError(500, "the gateway's database failed; see the gateway log", code="store")
    log.error("unhandled error", exc_info=exc)
    return ApiError(500, "internal error; see the gateway log", type="server_error")


def _validation_error(errors: Sequence[Any]) -> ApiError:
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return ApiError(
            400,
            f"the request body is not valid JSON ({detail})" if detail else "invalid JSON body",
            code="invalid_json",
        )
    problems = []
    param = None
    seen = set()
    for err in errors:
        loc = _clean_loc(err.get("loc", ()))
        if loc in seen:
            continue  # the other branches of a union, wrong in the same place
        seen.add(loc)
        where = format_path(loc)
        if param is None:
            param = where or None
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err.get("type") == "missing" and not loc:
            message = "the request body is missing; send a JSON object"
        elif err.get("type") == "extra_forbidden":
            message = "unrecognized request argument"
        problems.append(f"{where}: {message}" if where else message)
    return ApiError(400, "; ".join(problems) or "invalid request", param=param)


def _clean_loc(loc: Sequence[Any]) -> tuple[str | int, ...]:
    """Drop FastAPI's ``body`` prefix and pydantic's union and validator tags."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return tuple(
        p
        for p in parts
        if isinstance(p, int) or not ("[" in p or p.startswith("function-") or p in ("str",))
    )


def _http_error(exc: HTTPException, request: Request | None) -> ApiError:
    if exc.status_code == 404:
        where = f" {request.method} {request.url.path}" if request is not None else ""
        return ApiError(404, f"no such route:{where}", code="unknown_route")
    if exc.status_code == 405:
        where = f" {request.method} on {request.url.path}" if request is not None else ""
        return ApiError(405, f"method not allowed:{where}", code="method_not_allowed")
    return ApiError(exc.status_code, str(exc.detail), headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(to_api_error(exc, request))

    # Expected errors are answered inside the app; anything else reaches the outermost
    # handler, which answers the same way and logs the traceback.
    for kind in (ApiError, RequestValidationError, ValidationError, HTTPException, TetherError):
        app.add_exception_handler(kind, handle)
    app.add_exception_handler(Exception, handle)
