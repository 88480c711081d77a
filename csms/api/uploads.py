"""Diagnostics and log uploads: ask a station for a file, follow it, download it; and the receiver.

``POST /api/chargers/{id}/diagnostics`` (1.6 GetDiagnostics) and ``POST /api/chargers/{id}/logs``
(GetLog, 1.6 security extension and 2.0.1) answer 201 with the upload; ``/api/uploads`` lists them.
The receiver, ``PUT|POST /uploads/{token}``, takes the station's file without the API token (the
token in the address is the credential): a raw body, or multipart/form-data with one file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.outbound import absent
from csms.api.views import iso
from csms.ocpp.handshake import MAX_STATION_ID
from csms.uploads.rules import Kind, LogType, Receipt, Step, Upload, UploadParams, safe_filename
from csms.uploads.service import Refused
from ocppj.versions import OcppVersion

MAX_ID = 2**31 - 1  # upload ids are OCPP requestIds: 32-bit
UploadId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
MAX_PAGE = 1000


class Incoming(Protocol):
    """A file arriving at the receiver: its bytes, and its name once they are read (multipart)."""

    filename: str | None

    def chunks(self) -> AsyncIterator[bytes]: ...


class UploadsView(Protocol):
    """What the routes need of the upload service (``csms.uploads.service.UploadService``)."""

    async def request(self, charger_id: str, params: UploadParams) -> Upload: ...

    async def get(self, upload_id: int) -> Upload | None: ...

    async def list_uploads(
        self, *, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Upload]: ...

    async def timeline(self, upload_id: int) -> list[Step]: ...

    async def receive(
        self, token: str, chunks: AsyncIterator[bytes], filename: Callable[[], str | None]
    ) -> Upload: ...

    def file_path(self, upload_id: int) -> Path: ...

    async def sweep(self) -> int: ...

    @property
    def max_bytes(self) -> int: ...


def _uploads(request: Request) -> UploadsView:
    ctx: ApiContext = request.app.state.ctx
    if ctx.uploads is None:
        raise ApiError(404, "not_found", "uploads are disabled (uploads.enabled)")
    return ctx.uploads


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Uploads = Annotated[UploadsView, Depends(_uploads)]
Ctx = Annotated[ApiContext, Depends(_ctx)]


class _Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries: int | None = Field(None, ge=0, le=100, description="how often the station retries the upload")
    retry_interval_s: int | None = Field(None, ge=0, le=86_400, description="seconds between retries")


class DiagnosticsIn(_Window):
    start_time: datetime | None = Field(None, description="oldest diagnostics information to include")
    stop_time: datetime | None = Field(None, description="newest diagnostics information to include")


class LogIn(_Window):
    log_type: LogType
    oldest: datetime | None = Field(None, description="oldest log entry to include")
    latest: datetime | None = Field(None, description="newest log entry to include")


def upload_view(u: Upload) -> dict[str, Any]:
    """``{id, charger_id, kind, log_type, status, file, filename, size_bytes, sha256, ...}``; ``file``
    is waiting | receiving | received | pruned, ``download`` the file's route once received."""
    p = u.params
    return {
        "id": u.id, "charger_id": u.charger_id, "kind": p.kind.value,
        "log_type": p.log_type.value if p.log_type else None, "status": u.status, "file": u.receipt.value,
        "filename": u.filename, "size_bytes": u.size_bytes, "sha256": u.sha256,
        "oldest": iso(p.oldest), "latest": iso(p.latest), "retries": p.retries,
        "retry_interval_s": p.retry_interval_s, "created_at": iso(u.created_at),
        "updated_at": iso(u.updated_at),
        "expires_at": iso(u.expires_at), "received_at": iso(u.received_at), "detail": u.detail,
        "download": f"/api/uploads/{u.id}/file" if u.receipt is Receipt.RECEIVED else None,
    }


async def _connected(ctx: ApiContext, charger_id: str) -> OcppVersion:
    if len(charger_id) > MAX_STATION_ID:
        raise ApiError(404, "not_registered", f"charger id longer than {MAX_STATION_ID} characters")
    version = ctx.control.protocol_of(charger_id)
    if version is None:
        raise await absent(ctx, charger_id)
    return version


def _ordered(oldest: datetime | None, latest: datetime | None) -> None:
    if oldest is not None and latest is not None and oldest > latest:
        raise ApiError(400, "bad_request", "the window's start is after its end")


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10) or not 1 <= int(cursor) <= MAX_ID:
        raise ApiError(400, "bad_request", f"cursor {cursor!r} is not one this API returned")
    return int(cursor)


def uploads_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(dependencies=secured, tags=["uploads"])

    @router.post("/api/chargers/{charger_id}/diagnostics", status_code=201)
    async def request_diagnostics(
        charger_id: str, body: DiagnosticsIn, ctx: Ctx, uploads: Uploads
    ) -> dict[str, Any]:
        """Ask a 1.6 station for its diagnostics (GetDiagnostics); the upload with the station's
        answer (``Accepted`` with its file name, ``NoFile``, or ``Failed`` when none came)."""
        version = await _connected(ctx, charger_id)
        if version is not OcppVersion.V16:
            raise ApiError(400, "unsupported", "GetDiagnostics is OCPP 1.6; ask this station for a "
                           "DiagnosticsLog with POST /api/chargers/{id}/logs")
        _ordered(body.start_time, body.stop_time)
        params = UploadParams(kind=Kind.DIAGNOSTICS, oldest=body.start_time, latest=body.stop_time,
                              retries=body.retries, retry_interval_s=body.retry_interval_s)
        return upload_view(await uploads.request(charger_id, params))

    @router.post("/api/chargers/{charger_id}/logs", status_code=201)
    async def request_log(charger_id: str, body: LogIn, ctx: Ctx, uploads: Uploads) -> dict[str, Any]:
        """Ask a station for a log (GetLog: 2.0.1, or 1.6 with the security extension); the upload
        with the station's answer (``Accepted``, ``Rejected``, ``AcceptedCanceled``, or ``Failed``)."""
        await _connected(ctx, charger_id)
        _ordered(body.oldest, body.latest)
        params = UploadParams(kind=Kind.LOG, log_type=body.log_type, oldest=body.oldest, latest=body.latest,
                              retries=body.retries, retry_interval_s=body.retry_interval_s)
        return upload_view(await uploads.request(charger_id, params))

    @router.get("/api/uploads")
    async def list_uploads(
        uploads: Uploads, charger_id: Annotated[str | None, Query(max_length=MAX_STATION_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100, cursor: str | None = None,
    ) -> dict[str, Any]:
        """Newest first; ``next_cursor`` fetches the next page."""
        rows = await uploads.list_uploads(charger_id=charger_id, limit=limit + 1, before_id=_before(cursor))
        page = rows[:limit]
        more = len(rows) > limit
        return {"items": [upload_view(u) for u in page], "next_cursor": str(page[-1].id) if more else None}

    @router.get("/api/uploads/{upload_id}")
    async def get_upload(upload_id: UploadId, uploads: Uploads) -> dict[str, Any]:
        """One upload with its ``timeline``: ``[{at, event, detail}]``, oldest first."""
        upload = await _known(uploads, upload_id)
        steps = await uploads.timeline(upload_id)
        return {**upload_view(upload),
                "timeline": [{"at": iso(s.at), "event": s.event, "detail": s.detail} for s in steps]}

    @router.get("/api/uploads/{upload_id}/file", response_class=FileResponse,
                responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"}})
    async def download(upload_id: UploadId, uploads: Uploads) -> Response:
        """The uploaded file, as an attachment named after the station's file name."""
        upload = await _known(uploads, upload_id)
        if upload.receipt is not Receipt.RECEIVED:
            pruned = upload.receipt is Receipt.PRUNED
            why = "was deleted after the retention period" if pruned else "has not arrived"
            raise ApiError(404, "not_found", f"the file of upload {upload_id} {why}")
        return FileResponse(uploads.file_path(upload_id), media_type="application/octet-stream",
                            filename=safe_filename(upload.filename, upload_id))

    return router


async def _known(uploads: UploadsView, upload_id: int) -> Upload:
    upload = await uploads.get(upload_id)
    if upload is None:
        raise ApiError(404, "not_found", f"upload {upload_id} not found")
    return upload


# --- the receiver ------------------------------------------------------------------------------


class BadUpload(Exception):
    """A multipart body without exactly one file."""


class _Multipart:
    """The one file of a multipart/form-data body, streamed as it is parsed."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self.request = request
        self.filename: str | None = None
        self._out: list[bytes] = []
        self._files = 0
        self._in_file = False
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
        })

    def _begin(self) -> None:
        self._headers, self._in_file = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in options:
            self._files += 1
            if self._files > 1:
                raise BadUpload("a multipart upload carries one file")
            self._in_file = True
            self.filename = options[b"filename"].decode("utf-8", "replace") or None

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._out.append(data[start:end])

    async def chunks(self) -> AsyncIterator[bytes]:
        async for raw in self.request.stream():
            self._parser.write(raw)
            if self._out:
                out, self._out = b"".join(self._out), []
                yield out
        self._parser.finalize()
        if self._files != 1:
            raise BadUpload("the multipart body carries no file")


class _Raw:
    def __init__(self, request: Request) -> None:
        self.request = request
        self.filename: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for raw in self.request.stream():
            if raw:
                yield raw


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def receiver_router() -> APIRouter:
    router = APIRouter()

    @router.api_route("/uploads/{token}", methods=["PUT", "POST"], include_in_schema=False)
    async def receive(token: str, request: Request, uploads: Uploads) -> Response:
        """Take a station's file: 201 ``{id, size_bytes, sha256}``; 404 unknown or expired address,
        409 a second upload, 413 over ``uploads.max_mb``, 408 slower than ``uploads.receive_timeout_s``,
        400 a multipart body without one file."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > uploads.max_bytes + 65_536:  # room for multipart framing
            return _error(413, "payload_too_large", f"the upload is over {uploads.max_bytes} bytes")
        if len(token) > 128:
            return _error(404, "not_found", "no upload is expected at this address (unknown or expired)")
        kind, options = parse_options_header(request.headers.get("content-type", ""))
        incoming: _Multipart | _Raw
        if kind == b"multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                return _error(400, "bad_request", "multipart/form-data without a boundary")
            incoming = _Multipart(request, boundary)
        else:
            incoming = _Raw(request)
        try:
            upload = await uploads.receive(token, incoming.chunks(), lambda: incoming.filename)
        except Refused as exc:
            return _error(exc.status, exc.code, exc.detail)
        except (BadUpload, MultipartParseError) as exc:
            return _error(400, "bad_request", str(exc))
        except ClientDisconnect:
            return _error(400, "bad_request", "the upload broke off")
        return JSONResponse({"id": upload.id, "size_bytes": upload.size_bytes, "sha256": upload.sha256},
                            status_code=201)

    return router
