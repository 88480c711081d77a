"""Firmware routes: images (upload, list, delete), their unauthenticated download links, campaigns.

Errors (``{error, detail}``): 400 ``bad_request`` (a bad body or parameter), 404 ``not_found``
(no such file or campaign, an unknown download link), 409 ``conflict`` (a transition the
campaign's state does not allow, a station already in an active campaign, a file in use),
410 ``gone`` (an expired download link), 413 ``payload_too_large`` (an image over
``firmware.max_file_bytes``).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from csms.api.audit import actor_of, audit_log
from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.core.audit import AuditEntry
from csms.core.targets import Targets
from csms.errors import StoreUnavailable
from csms.firmware.campaign import Campaign, CampaignSpec, StationState, TransitionNotAllowed, Window
from csms.firmware.files import FILE_ID, EmptyImage, TokenExpired, TokenInvalid, TooLarge
from csms.firmware.service import Conflict, FirmwareService, NotFound
from csms.store.firmware import FirmwareFile

NEXT_CURSOR = "X-Next-Cursor"
STATIONS_PAGE = 1000
MAX_STATIONS_PAGE = 10_000
MAX_CAMPAIGN_ID = 2**31 - 1
CampaignId = Annotated[int, Path(ge=1, le=MAX_CAMPAIGN_ID)]


def _firmware(request: Request) -> FirmwareService:
    ctx: ApiContext = request.app.state.ctx
    if ctx.firmware is None:
        raise ApiError(404, "not_found", "firmware campaigns are disabled (firmware.enabled)")
    return ctx.firmware


Firmware = Annotated[FirmwareService, Depends(_firmware)]


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time = Field(description="UTC time of day, e.g. 01:00")
    end: time = Field(description="UTC time of day; before start wraps past midnight")


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=50, description="the version stations report once updated")
    location: str | None = Field(None, min_length=1, max_length=512, pattern=r"^(https?|ftps?)://",
                                 description="an external image URL, or give file_id")
    file_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="an image uploaded to the CSMS")
    targets: dict[str, Any] = Field(description='{"stations": [...]} | {"group": "..."} | {"site": "..."}')
    wave_size: int = Field(10, ge=1, le=100_000)
    success_threshold: float = Field(1.0, ge=0, le=1, description="share of a wave's stations not failed "
                                     "that must be installed before the next wave starts")
    max_retries: int = Field(2, ge=0, le=100)
    window: WindowIn | None = None
    retrieve_at: datetime | None = None
    signature: str | None = Field(None, min_length=1, max_length=800,
                                   description="base64 signature of the image")
    signing_certificate: str | None = Field(None, min_length=1, max_length=5500, description="PEM")
    station_timeout_s: float = Field(600.0, gt=0, le=7 * 86_400)


def file_view(f: FirmwareFile) -> dict[str, Any]:
    return {"file_id": f.file_id, "name": f.name, "size": f.size, "sha256": f.sha256,
            "created_at": iso(f.created_at)}


def campaign_summary(c: Campaign, counts: dict[str, int] | None = None) -> dict[str, Any]:
    s = c.spec
    return {
        "id": c.id, "state": c.state.value, "version": s.version, "location": s.location,
        "file_id": s.file_id,
        "wave_size": s.wave_size, "success_threshold": s.success_threshold, "max_retries": s.max_retries,
        "window": None if s.window is None else {"start": s.window.start.isoformat("minutes"),
                                                 "end": s.window.end.isoformat("minutes")},
        "retrieve_at": iso(s.retrieve_at), "signed": s.signed, "station_timeout_s": s.station_timeout_s,
        "current_wave": c.current_wave, "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
        "counts": counts if counts is not None else c.counts(),
    }


def campaign_view(
    c: Campaign, *, start: int = 0, limit: int = STATIONS_PAGE, state: StationState | None = None
) -> tuple[dict[str, Any], int | None]:
    """The campaign with its waves and ``limit`` of its stations (by wave, then id) from ``start``;
    and where the next page starts (None: this was the last)."""
    view = campaign_summary(c)
    view["waves"] = [{"wave": i, "counts": counts} for i, counts in enumerate(c.wave_counts())]
    runs = sorted(c.stations.values(), key=lambda r: (r.wave, r.charger_id))
    if state is not None:
        runs = [r for r in runs if r.state is state]
    view["stations"] = [
        {"charger_id": r.charger_id, "state": r.state.value, "last_status": r.last_status,
         "updated_at": iso(r.updated_at), "attempts": r.attempts, "wave": r.wave}
        for r in runs[start:start + limit]
    ]
    return view, start + limit if start + limit < len(runs) else None


def _name(name: str) -> str:
    if not 1 <= len(name) <= 255 or any(ord(ch) < 32 or ch in "/\\" for ch in name):
        raise ApiError(400, "bad_request",
                       "name must be 1-255 characters without control characters or slashes")
    return name


async def _audit(request: Request, action: str, target: str, digest: str, result: str) -> None:
    ctx: ApiContext = request.app.state.ctx
    trail = audit_log(ctx)
    if trail is not None:
        with contextlib.suppress(StoreUnavailable):
            await trail.record_audit(AuditEntry(ctx.service.clock.now(), actor_of(request), action, target,
                                                digest, result))


def firmware_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(tags=["firmware"])
    token_only = secured[:1]  # the upload is audited below: the audit dependency would buffer the image

    @router.post("/api/firmware-files", status_code=201, dependencies=token_only)
    async def upload_file(
        request: Request, fw: Firmware, name: Annotated[str, Query(description="the image's file name")],
    ) -> dict[str, Any]:
        """The raw request body is the image; kept under its SHA-256. 413 past ``firmware.max_file_bytes``."""
        _name(name)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > fw.blobs.max_bytes:
            raise ApiError(413, "payload_too_large",
                           f"the image is larger than {fw.blobs.max_bytes} bytes (firmware.max_file_bytes)")
        try:
            f = await fw.add_file(name, request.stream())
        except TooLarge as exc:
            await _audit(request, "upload_firmware_file", name, "", "payload_too_large")
            raise ApiError(413, "payload_too_large", str(exc)) from None
        except EmptyImage as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        await _audit(request, "upload_firmware_file", f.file_id, f.sha256, "ok")
        return file_view(f)

    @router.get("/api/firmware-files", dependencies=secured)
    async def list_files(
        fw: Firmware, response: Response, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    ) -> list[dict[str, Any]]:
        """By id; a full page carries the next page's ``cursor`` in ``X-Next-Cursor``."""
        page = await fw.store.list_files(limit=limit, after=cursor)
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = page[-1].file_id
        return [file_view(f) for f in page]

    @router.get("/api/firmware-files/{file_id}", dependencies=secured)
    async def get_file(file_id: str, fw: Firmware) -> dict[str, Any]:
        f = await fw.store.get_file(file_id) if FILE_ID.match(file_id) else None
        if f is None:
            raise ApiError(404, "not_found", f"firmware file {file_id} not found")
        return file_view(f)

    @router.delete("/api/firmware-files/{file_id}", status_code=204, dependencies=secured)
    async def delete_file(file_id: str, fw: Firmware) -> Response:
        """409 while a running or paused campaign uses it."""
        if not FILE_ID.match(file_id):
            raise ApiError(404, "not_found", f"firmware file {file_id} not found")
        try:
            await fw.delete_file(file_id)
        except NotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except Conflict as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return Response(status_code=204)

    @router.get("/firmware/{token}", include_in_schema=True, tags=["firmware download"])
    async def download(token: Annotated[str, Path(max_length=200)], fw: Firmware) -> FileResponse:
        """The image a campaign's link grants, without the API token: 404 unknown, 410 expired."""
        try:
            f = await fw.download(token)
        except TokenExpired as exc:
            raise ApiError(410, "gone", str(exc)) from None
        except (TokenInvalid, NotFound):
            raise ApiError(404, "not_found", "unknown download") from None
        path = fw.blobs.path_of(f.sha256)
        if not path.is_file():  # kept in the store, not on this node's disk
            raise ApiError(404, "not_found", f"the image of {f.file_id} is not on this node (files_dir)")
        return FileResponse(path, media_type="application/octet-stream",
                            filename=f.name, headers={"X-Checksum-Sha256": f.sha256})

    @router.post("/api/firmware-campaigns", status_code=201, dependencies=secured)
    async def create_campaign(body: CampaignIn, fw: Firmware) -> dict[str, Any]:
        """Start a campaign over the targets' registered stations."""
        try:
            targets = Targets.parse(body.targets)
            spec = CampaignSpec(
                version=body.version, location=body.location, file_id=body.file_id, wave_size=body.wave_size,
                success_threshold=body.success_threshold, max_retries=body.max_retries,
                window=None if body.window is None else Window(body.window.start.replace(tzinfo=None),
                                                               body.window.end.replace(tzinfo=None)),
                retrieve_at=None if body.retrieve_at is None else _utc(body.retrieve_at),
                signature=body.signature, signing_certificate=body.signing_certificate,
                station_timeout_s=body.station_timeout_s,
            )
            campaign = await fw.create(spec, targets)
        except (ValueError, NotFound) as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        except Conflict as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return campaign_view(campaign)[0]

    @router.get("/api/firmware-campaigns", dependencies=secured)
    async def list_campaigns(
        fw: Firmware, response: Response, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_CAMPAIGN_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Newest first, with counts per station state; ``X-Next-Cursor`` after a full page."""
        page = await fw.store.list_campaigns(limit=limit, before=cursor)
        counts = await fw.store.station_counts([c.id for c in page])
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = str(page[-1].id)
        out = []
        for c in page:
            live = fw.campaigns.get(c.id)
            out.append(campaign_summary(live) if live is not None else campaign_summary(c, counts[c.id]))
        return out

    @router.get("/api/firmware-campaigns/{campaign_id}", dependencies=secured)
    async def get_campaign(
        campaign_id: CampaignId, fw: Firmware, response: Response,
        limit: Annotated[int, Query(ge=1, le=MAX_STATIONS_PAGE, description="stations per page")]
        = STATIONS_PAGE,
        cursor: Annotated[int | None, Query(ge=0, le=10**7, description="X-Next-Cursor of the page before")]
        = None,
        state: Annotated[StationState | None, Query(description="only stations in this state")] = None,
    ) -> dict[str, Any]:
        """The campaign, its waves' counts and a page of its stations (``X-Next-Cursor`` when more)."""
        c = await fw.get(campaign_id)
        if c is None:
            raise ApiError(404, "not_found", f"campaign {campaign_id} not found")
        view, following = campaign_view(c, start=cursor or 0, limit=limit, state=state)
        if following is not None:
            response.headers[NEXT_CURSOR] = str(following)
        return view

    @router.post("/api/firmware-campaigns/{campaign_id}/{intent}", dependencies=secured)
    async def transition(
        campaign_id: CampaignId, intent: Literal["pause", "resume", "abort"], fw: Firmware,
    ) -> dict[str, Any]:
        """pause (running), resume (paused), abort (running or paused); 409 otherwise."""
        try:
            c = await fw.transition(campaign_id, intent)
        except NotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except TransitionNotAllowed as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return campaign_view(c)[0]

    return router


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
