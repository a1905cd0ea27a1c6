"""``review OUTPUT_DIR``: the run's review page served on loopback, with an editor that fixes a
result and rewrites it.

A local server that rewrites files is a target from any web page the user has open and from
any other user of the machine, so, as Jupyter guards its server: it listens on loopback only;
every request needs the server's secret token (the URL it prints sets it as a cookie; scripts
send ``Authorization: Bearer TOKEN``); its ``Host`` must be the address it serves (DNS
rebinding); a request whose ``Origin`` is another one, or whose ``Sec-Fetch-Site`` is not
same-origin, is refused; no page may be framed (clickjacking); a POST must be
``application/json`` (a plain form cannot send one) and at most :data:`MAX_BODY` bytes; and a
result's name maps only to a result of this run. Files are served by a keyed token the server
made for each file it shows, never by a path from the request. Imported only by the ``review``
command (FastAPI is the service extra's).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, ConfigDict, Field

from operations.jobs.report import render
from operations.review.page import EDITOR
from operations.review.session import ReviewError, ReviewSession
from operations.service.guard import BodyGuard

log = logging.getLogger("backgroundswap")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8000
# A fix's size: far beyond a person's painting, short of a body that keeps the server busy.
MAX_STROKES, MAX_POINTS = 1000, 5000
MAX_BODY = 4 * 2**20  # bytes of JSON a fix may take
COOKIE = "backgroundswap_review"
TOKEN_VARIABLE = "BACKGROUNDSWAP_REVIEW_TOKEN"  # a token chosen for a script, never a flag
Point = Annotated[float, Field(allow_inf_nan=False)]


class StrokeBody(BaseModel):
    """One brush stroke, in the photo's own pixels (after its EXIF rotation)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["keep", "remove"] = Field(description="keep: subject; remove: background")
    radius: float = Field(
        gt=0, le=2000, allow_inf_nan=False, description="the brush's radius, in photo pixels"
    )
    points: list[tuple[Point, Point]] = Field(
        min_length=1, max_length=MAX_POINTS, description="[x, y] along the stroke"
    )


class FixBody(BaseModel):
    """A result's fix: strokes the edge stage solves the matte with, and the knobs on the mask.
    Every field is optional; an empty body is the run's own result."""

    model_config = ConfigDict(extra="forbid")
    strokes: list[StrokeBody] = Field(default_factory=list, max_length=MAX_STROKES)
    mode: str | None = Field(None, description="another model for this photo (GET /api/models)")
    threshold: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="the mask made yes/no at it"
    )
    grow: int = Field(0, ge=-500, le=500, description="px; negative shrinks (before the edges)")
    feather: float = Field(
        0.0, ge=0, le=500, allow_inf_nan=False, description="px of softening (after the edges)"
    )
    matting: Literal["fast", "quality", "off"] | None = Field(None, description="edge mode")
    revision: int | None = Field(
        None, description="the correction this page started from: a later one is refused (409)"
    )


class _Files:
    """Files the pages show, each behind a token the server made (never a path it was sent)."""

    def __init__(self, base: Path) -> None:
        self._paths: dict[str, Path] = {}
        self.base = base  # where the run's relative paths start
        self._key = secrets.token_bytes(32)  # so no one can work a token out from a path

    def link(self, path: Path) -> str:
        path = self.base / path
        name = str(path.resolve()).encode()
        token = hashlib.blake2b(name, key=self._key, digest_size=12).hexdigest()
        self._paths[token] = path
        return f"/files/{token}"

    def get(self, token: str) -> Path | None:
        return self._paths.get(token)


def _allowed_hosts(host: str, port: int) -> set[str]:
    names = {host, *LOOPBACK} if host in LOOPBACK else {host}
    return {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names}


def create_app(
    session: ReviewSession, token: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> FastAPI:
    """The review server's app: the page, the editor, the files they show, and the JSON API;
    every request needs ``token`` (a cookie the printed URL sets, or a Bearer header)."""
    app = FastAPI(
        title="BackgroundSwap review",
        description="Fix a run's results: preview a fix, accept it (the result is rewritten). "
        "Every request needs the server's token: `Authorization: Bearer TOKEN`.",
        version="1",
    )
    _add_guard(app, _allowed_hosts(host, port), token)

    @app.exception_handler(ReviewError)
    async def refused(request: Request, exc: ReviewError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Said in one line, never echoing the body back (it may be large, or hold NaN).
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    files = _Files(session.working)
    _add_pages(app, session, files)
    _add_api(app, session, files)
    return app


def _add_guard(app: FastAPI, hosts: set[str], token: str) -> None:
    """The token; Host (DNS rebinding), Origin and Sec-Fetch-Site (other sites and ports);
    JSON-only posts of a bounded size; no framing."""
    origins = {f"http://{h}" for h in hosts}

    def has_token(request: Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def refuse(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        asked = request.headers.get("host", "")
        if asked not in hosts:
            return refuse(403, f"Host {asked!r} is not this server")
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site", "same-origin")
        if (origin is not None and origin not in origins) or site not in ("same-origin", "none"):
            return refuse(403, "a request from another site")
        opened = request.query_params.get("token")  # the printed URL: sets the cookie
        if opened is not None and hmac.compare_digest(opened.encode(), token.encode()):
            opening = RedirectResponse(str(request.url.remove_query_params("token")), 303)
            opening.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return _unframed(opening)
        if not has_token(request):
            return refuse(401, "the review server's token is needed: open the URL it printed")
        if request.method == "POST":
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return refuse(415, "the body must be application/json")
            declared = request.headers.get("content-length") or "0"
            if not declared.isdigit() or int(declared) > MAX_BODY:
                return refuse(413, f"a fix is at most {MAX_BODY // 2**20} MB of JSON")
        response: Response = await call_next(request)
        return _unframed(response)


def _unframed(response: Response) -> Response:
    """No page of this server in another's frame (a click on Accept through it)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response


def _urls(session: ReviewSession, files: _Files, name: str) -> dict[str, str]:
    row = session.row(name)
    return {
        "editor": f"/fix/{quote(name)}",
        "photo": f"/api/results/{quote(name)}/photo",
        "input_file": files.link(session.path_of(row, "input")),
        "output_file": files.link(session.output_folder / name),
    }


def _add_pages(app: FastAPI, session: ReviewSession, files: _Files) -> None:
    """The review page (the run's, with a Fix on each result), the editor, their files."""

    def editor_of(row: dict) -> str | None:
        name = session.name_of(row)
        return f"/fix/{quote(name)}" if name is not None else None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        where = session.working / (session.options.input or ".")
        root = where if where.is_dir() else where.parent
        return render(session.report["files"], session.page, session.output_folder, root,
                      link=files.link, fix=editor_of)  # fmt: skip

    @app.get("/files/{token}", include_in_schema=False)
    def file(token: str) -> Response:
        path = files.get(token)
        if path is None or not path.is_file():
            return JSONResponse({"error": "no such file"}, status_code=404)
        return FileResponse(path)

    @app.get("/fix/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def editor(name: str) -> str:
        session.row(name)
        order = [item["name"] for item in session.listing()]
        data = json.dumps({"name": name, "order": order}).replace("</", "<\\/")
        # The title first: a result named __DATA__ or __TITLE__ is then only ever text.
        return EDITOR.replace("__TITLE__", html.escape(name)).replace("__DATA__", data)


def _add_api(app: FastAPI, session: ReviewSession, files: _Files) -> None:
    """The JSON API under the page (in /openapi.json): results, models, preview, accept."""

    @app.get("/api/results", summary="Every result, doubtful first")
    def results() -> list[dict[str, Any]]:
        return [{**item, **_urls(session, files, item["name"])} for item in session.listing()]

    @app.get("/api/models", summary="The models a fix may choose")
    def models() -> list[str]:
        return session.models()

    @app.get("/api/results/{name:path}/photo", summary="The photo, upright, as JPEG")
    def photo(name: str) -> Response:
        return Response(session.photo_jpeg(name), media_type="image/jpeg")

    @app.post(
        "/api/results/{name:path}/preview",
        summary="The result with a fix, reduced (a PNG); nothing is written",
        responses={200: {"content": {"image/png": {}}}},
    )
    def preview(name: str, body: FixBody, view: Literal["result", "mask"] = "result") -> Response:
        png = session.preview(name, body.model_dump(), view=view)
        return Response(png, media_type="image/png")

    @app.post("/api/results/{name:path}/accept", summary="Keep a fix and rewrite the result")
    def accept(name: str, body: FixBody) -> dict[str, Any]:
        return session.accept(name, body.model_dump())

    @app.get("/api/results/{name:path}", summary="One result")
    def result(name: str) -> dict[str, Any]:
        return {**session.describe(name), **_urls(session, files, name), **session.size(name)}


def serve(
    output_folder: Path,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
) -> int:
    """Serve the review of ``output_folder`` until Ctrl-C or SIGTERM (``token``: the secret
    every request needs; default: a new random one, printed in the URL).

    Raises:
        ReviewError: a public address, or a folder with no review data.
    """
    import uvicorn

    if host not in LOOPBACK:  # the command line refuses it first, naming its flag
        raise ReviewError(f"host {host!r}: loopback only ({', '.join(LOOPBACK)})")
    session = ReviewSession(output_folder)
    token = token or secrets.token_urlsafe(24)
    try:
        app = BodyGuard(
            create_app(session, token, host, port),
            MAX_BODY,
            60.0,
            answer=lambda status, code, detail: {"error": f"{code}: {detail}"},
        )
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/?token={token}"
        log.warning("reviewing %s on %s (Ctrl-C stops)", output_folder, url)
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()
    finally:
        session.close()
    return 0
