"""Security routes of the operator API: password rotation, certificates, the CA certificate.

Passwords are write-only: they go in, are hashed, and never come out, not even generated
ones (the station received it; nobody else needs it).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from csms.api.context import ApiContext
from csms.errors import CallErrorReceived, ControlError, StationNotConnected
from csms.security import lifecycle
from csms.security.ca import CaProvider
from csms.security.records import SecurityStore


class PasswordIn(BaseModel):
    password: str | None = Field(
        None, min_length=16, max_length=40, description="omit to let the CSMS generate one"
    )


class CertificateIn(BaseModel):
    certificate_type: Literal["csms_root", "manufacturer_root", "v2g_root", "mo_root"] = "csms_root"
    certificate: str | None = Field(
        None, max_length=5500, description="PEM; omit to install this CSMS's CA certificate"
    )


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _store(ctx: ApiContext) -> SecurityStore:
    store: SecurityStore = ctx.service.store  # type: ignore[assignment]  # SqlStore implements both ports
    return store


def _ca(ctx: ApiContext) -> CaProvider:
    ca = ctx.ca
    if ca is None:
        raise HTTPException(404, "the certificate authority is disabled (ca.enabled = false)")
    return ca


def security_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["security"], dependencies=secured)

    @router.post("/chargers/{charger_id}/password")
    async def rotate_password(charger_id: str, body: PasswordIn, request: Request) -> dict[str, Any]:
        """Give a connected station a new password; the stored one switches only when it accepts."""
        ctx = _ctx(request)
        try:
            result = await lifecycle.rotate_password(ctx.control, _store(ctx), charger_id, body.password)
        except StationNotConnected as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except lifecycle.RotationInProgress as exc:
            raise HTTPException(409, str(exc)) from None
        return {"status": result.status, "switched": result.switched}

    @router.get("/chargers/{charger_id}/certificates")
    async def list_certificates(charger_id: str, request: Request) -> list[dict[str, Any]]:
        """Certificates this CSMS's CA issued to the station, newest first."""
        certs = await _store(_ctx(request)).list_certificates(charger_id)
        return [
            {"serial": c.serial, "subject": c.subject, "not_before": c.not_before.isoformat(),
             "not_after": c.not_after.isoformat(), "status": c.status, "pem": c.pem}
            for c in certs
        ]

    @router.post("/chargers/{charger_id}/certificates/install")
    async def install_certificate(charger_id: str, body: CertificateIn, request: Request) -> dict[str, Any]:
        """InstallCertificate of a root certificate on a connected station."""
        ctx = _ctx(request)
        pem = body.certificate or _ca(ctx).get().cert_pem
        kind = body.certificate_type
        return await _station_call(lifecycle.install_certificate(ctx.control, charger_id, kind, pem))

    @router.post("/chargers/{charger_id}/certificates/renew")
    async def renew_certificate(charger_id: str, request: Request) -> dict[str, Any]:
        """Ask the station to send a SignCertificate now."""
        return await _station_call(lifecycle.request_new_certificate(_ctx(request).control, charger_id))

    @router.get("/ca.pem", response_class=Response,
                responses={200: {"content": {"application/x-pem-file": {}}, "description": "PEM"}})
    async def ca_certificate(request: Request) -> Response:
        """The certificate of the CA that signs station certificates (public)."""
        return Response(_ca(_ctx(request)).get().cert_pem, media_type="application/x-pem-file")

    return router


async def _station_call(call: Awaitable[str]) -> dict[str, Any]:
    try:
        status = await call
    except StationNotConnected as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except CallErrorReceived as exc:
        raise HTTPException(502, f"station answered with a CALLERROR: {exc.code}") from None
    except ControlError as exc:
        raise HTTPException(504, str(exc)) from None
    return {"status": status}
