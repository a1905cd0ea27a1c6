"""The HTTP front door (``backgroundswap serve``): remove.bg's API, over the same pipeline as a
batch, with the models loaded once for the server's life.

A request's image is decoded, swapped and encoded on a pool of threads (as the batch's local
engine does); in front of the pool a bounded queue: a request beyond it is answered ``503`` with
``Retry-After`` at once, never kept waiting in an unbounded backlog. Errors come out in
remove.bg's shape (``{"errors": [{"title", "code", "detail"}]}``), naming settings as this front
door does (its form fields). What each remove.bg parameter does here is
:data:`operations.service.removebg.PARAMETERS`, shown in docs/service.md.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request),
# which are evaluated where the endpoints are defined, inside create_app.

import asyncio
import functools
import hmac
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from operations.errors import BackgroundSwapError, SettingError, named, render, require, setting
from operations.service.fetch import FetchSettings
from operations.service.guard import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    BodyGuard,
    guarded_protocol,
)
from operations.service.removebg import ApiError
from operations.service.schema import ERRORS, request_body

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.requests import Request as HttpRequest

    from operations.build import Recipe
    from operations.segmenters.base import Segmenter

log = logging.getLogger("backgroundswap.service")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8000
DEFAULT_QUEUE = 16
DEFAULT_MAX_UPLOAD_MB = 25.0
DEFAULT_TIMEOUT = 120.0
_TITLES = {408: "Request timeout", 413: "Upload too large"}  # the body guard's answers


@dataclass(frozen=True)
class ServiceSettings:
    """What the server reads besides the pipeline's settings."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_keys: tuple[str, ...] = ()  # none: only loopback, unless no_auth
    no_auth: bool = False  # serve a public address without keys (asked for by name)
    queue: int = DEFAULT_QUEUE  # requests waiting beyond the ones being worked on
    workers: int = 2  # requests worked on at once (threads: decode, model, encode overlap)
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    timeout: float = DEFAULT_TIMEOUT  # seconds a request may take, queue included
    max_pixels: int = 40_000_000
    fetching: FetchSettings = field(default_factory=FetchSettings)  # image_url: from where
    header_timeout: float = DEFAULT_HEADER_TIMEOUT  # seconds for a request's line and headers
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # seconds for its body
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # open at once; beyond: 503 and closed
    tls_cert: Path | None = None  # serve https with this certificate chain (PEM) …
    tls_key: Path | None = None  # … and its private key
    behind_proxy: bool = False  # a TLS-terminating proxy is in front (keys over plain HTTP ok)
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For/-Proto are believed

    def __post_init__(self) -> None:
        require(0 < self.port < 65536, "port", self.port, "must be between 1 and 65535")
        require(self.queue >= 0, "queue", self.queue, "must not be negative")
        require(self.workers >= 1, "workers", self.workers, "must be at least 1")
        require(self.max_upload_mb > 0, "max_upload_mb", self.max_upload_mb, "must be positive")
        require(self.timeout > 0, "timeout", self.timeout, "must be positive")
        for name in ("header_timeout", "body_timeout"):
            require(getattr(self, name) > 0, name, getattr(self, name), "must be positive")
        needed = self.workers + self.queue
        require(
            self.max_connections > needed,
            "max_connections",
            self.max_connections,
            f"must be above the requests admitted ({needed}), far above is better",
        )
        require(
            (self.tls_cert is None) == (self.tls_key is None),
            "tls_cert" if self.tls_cert is None else "tls_key",
            None,
            f"give both {setting('tls_cert')} and {setting('tls_key')}",
        )
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            require(path is None or Path(path).is_file(), name, path, "no such file")
        require(
            not self.trusted_proxies or self.behind_proxy,
            "trusted_proxies",
            ",".join(self.trusted_proxies),
            f"goes with {setting('behind_proxy')}",
        )
        public = self.host not in LOOPBACK
        require(
            not public or bool(self.api_keys) or self.no_auth,
            "host",
            self.host,
            f"a public address needs API keys ({setting('api_keys')}) or, to serve anyone, "
            f"{setting('no_auth')}",
        )
        require(
            not (public and self.api_keys) or self.tls_cert is not None or self.behind_proxy,
            "host",
            self.host,
            "API keys over plain HTTP on a public address are readable on the network: serve "
            f"https with {setting('tls_cert')} and {setting('tls_key')}, or say "
            f"{setting('behind_proxy')} when a TLS-terminating proxy is in front",
        )

    @property
    def max_upload(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def read_keys(text: str) -> tuple[str, ...]:
    """API keys, one a line (blank lines and ``#`` comments skipped)."""
    keys = (line.strip() for line in text.splitlines())
    return tuple(key for key in keys if key and not key.startswith("#"))


class Admission:
    """At most ``workers + queue`` requests admitted at once; the rest refused at once."""

    def __init__(self, workers: int, queue: int) -> None:
        self.capacity = workers + queue
        self.admitted = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.admitted >= self.capacity:
                return False
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1


class Service:
    """The server's state: the model (loaded once, in the background), the pool the requests
    are worked on, their admission and the metrics."""

    def __init__(
        self,
        recipe: "Recipe",
        settings: ServiceSettings,
        *,
        segmenter: "Callable[[], Segmenter] | None" = None,
    ) -> None:
        from operations.build import build_segmenter
        from operations.media.decode import allow_pixels

        allow_pixels(settings.max_pixels)  # Pillow's own limit, up to ours (decode checks ours)
        # Pillow warns of a large image as it opens it; decode refuses those over our limit
        # itself, so the warning would only be noise on the server's log, once a request.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        self.recipe, self.settings = recipe, settings
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="bgswap-serve")
        self.admission = Admission(settings.workers, settings.queue)
        self.segmenter: Segmenter | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()
        self._make_segmenter = segmenter or (lambda: build_segmenter(recipe))
        self.metrics = _Metrics()

    def load(self) -> None:
        """Load the model (at start, on a thread: ``/readyz`` says when it is done)."""
        try:
            self.segmenter = self._make_segmenter()
        except BackgroundSwapError as exc:
            self.load_error = str(exc)
            log.error("the model could not be loaded: %s", exc)
        else:
            self.ready.set()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.segmenter is not None:
            self.segmenter.close()

    def check_key(self, request: "HttpRequest") -> None:
        keys = self.settings.api_keys
        if not keys:
            return
        given = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if given is None and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        # Every key compared, each in constant time: the time taken says nothing of which.
        ok = False
        for key in keys:
            ok |= hmac.compare_digest((given or "").encode(), key.encode())
        if not ok:
            raise ApiError(403, "Forbidden: API Key invalid", "auth_failed")

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` on the pool: refused with 503 when the queue is full, 504 past the
        request time-out, 503 while the model is loading."""
        if not self.ready.is_set():
            detail = self.load_error or "the model is loading; try again shortly"
            raise ApiError(503, "Service unavailable", "not_ready", detail)
        if not self.admission.enter():
            raise ApiError(503, "Too many requests queued", "queue_full", "try again shortly")
        try:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.pool, work)
            try:
                return await asyncio.wait_for(future, self.settings.timeout)
            except asyncio.TimeoutError:
                raise ApiError(504, "Timed out", "timeout", "the image took too long") from None
        finally:
            self.admission.leave()


class _Metrics:
    """Prometheus metrics, each server its own registry (tests start several in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bgswap_requests", "HTTP requests by status", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "bgswap_request_seconds",
            "request latency",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.images = Counter("bgswap_images", "images processed", registry=self.registry)
        self.queue = Gauge(
            "bgswap_admitted", "requests admitted (working or queued)", registry=self.registry
        )

    def text(self, admitted: int) -> bytes:
        from prometheus_client import generate_latest

        self.queue.set(admitted)
        return generate_latest(self.registry)


def create_app(service: Service) -> "FastAPI":
    """The FastAPI application over ``service``."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=service.load, name="bgswap-load", daemon=True).start()
        yield
        service.close()

    app = FastAPI(
        title="BackgroundSwap",
        summary="remove.bg's API, self-hosted, over BackgroundSwap's pipeline",
        lifespan=lifespan,
    )
    _add_logging_and_errors(app, service)
    _add_probes_and_page(app, service)
    _add_image_routes(app, service)
    return app


def _error_response(exc: ApiError) -> "JSONResponse":
    from fastapi.responses import JSONResponse

    headers = {"Retry-After": "1"} if exc.status == 503 else {}
    if exc.status == 413:
        headers["Connection"] = "close"  # the rest of the body is not read
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _add_logging_and_errors(app: "FastAPI", service: Service) -> None:
    """One access-log line a request (no keys, no image data), its metrics, uploads refused
    from their Content-Length, and :class:`ApiError` in remove.bg's shape."""
    from fastapi import Request

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        began = time.perf_counter()
        request_id = uuid.uuid4().hex[:12]
        declared = request.headers.get("content-length") or "0"
        status, sent = 500, 0
        try:
            if not declared.isdigit() or int(declared) > service.settings.max_upload:
                # Refused before a byte of the body is read (the connection is then closed).
                limit = f"at most {service.settings.max_upload_mb:g} MB"
                error = ApiError(413, "Upload too large", "file_too_large", limit)
                response = _error_response(error)
            else:
                response = await call_next(request)
            # The guard's own answer, where it cut the body (BodyGuard), is what the client got.
            status = request.scope.get("state", {}).get("guard_status", response.status_code)
            sent = int(response.headers.get("content-length") or 0)
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            seconds = time.perf_counter() - began
            service.metrics.requests.labels(str(status)).inc()
            service.metrics.latency.observe(seconds)
            path, method = request.url.path, request.method
            client = request.client.host if request.client else "-"
            log.info(
                "%s %s %s %s %d %d B %.0f ms",
                request_id,
                client,
                method,
                path,
                status,
                sent,
                seconds * 1000,
            )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> "JSONResponse":
        return _error_response(exc)


def _add_probes_and_page(app: "FastAPI", service: Service) -> None:
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from operations.service.page import PAGE

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if service.ready.is_set():
            return JSONResponse({"status": "ready"})
        detail = service.load_error or "loading the model"
        return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        text = service.metrics.text(service.admission.admitted)
        return Response(text, media_type="text/plain; version=0.0.4")


def _add_image_routes(app: "FastAPI", service: Service) -> None:
    """remove.bg's endpoint, and our own ``/v1/swap`` and ``/v1/mask``."""
    from fastapi import Request
    from fastapi.responses import Response

    from operations.service import removebg, swap_api

    async def swapped(request: Request, planner: Callable[..., Any]) -> Any:
        """The request's photo through the pipeline, as ``planner`` reads the request."""
        service.check_key(request)
        asked = await removebg.read_request(request, service.settings.max_upload)

        def work() -> Any:  # on the pool, once admitted: decoding is work too
            settings = service.settings
            job = planner(asked, service.recipe, settings.max_pixels, settings.fetching)
            return job.run(service.segmenter)

        try:
            result = await service.run(work)
        except ApiError:
            raise
        except SettingError as exc:
            with named(removebg.FIELD_NAMES):  # a message names this front door's fields
                raise ApiError(400, str(exc), "invalid_parameters") from None
        except BackgroundSwapError as exc:
            with named(removebg.FIELD_NAMES):
                raise ApiError(400, str(exc), "invalid_image") from None
        service.metrics.images.inc()
        with named(removebg.FIELD_NAMES):
            result.warnings[:] = [render(warning) for warning in result.warnings]
        return result

    async def remove_background(request: Request) -> Response:
        result = await swapped(request, removebg.plan)
        return removebg.respond(result, request.headers.get("accept", ""))

    async def swap(request: Request) -> Response:
        result = await swapped(request, swap_api.plan_swap)
        return swap_api.respond(result, request.headers.get("accept", ""))

    async def mask(request: Request) -> Response:
        result = await swapped(request, functools.partial(swap_api.plan_swap, mask=True))
        return swap_api.respond(result, request.headers.get("accept", ""))

    images: dict[int | str, dict[str, Any]] = {
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}
    }
    routes = [
        ("/v1.0/removebg", remove_background, "remove.bg's request and response"),
        ("/v1/removebg", remove_background, "remove.bg's, at its other address"),
        ("/v1/swap", swap, "every per-photo choice of the command line"),
        ("/v1/mask", mask, "the subject's mask (alpha) as a grey PNG"),
    ]
    for path, endpoint, summary in routes:
        ours = path in ("/v1/swap", "/v1/mask")
        fields = swap_api.FIELD_DOCS if ours else removebg.PARAMETERS
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            summary=summary,
            description=swap_api.__doc__ if ours else removebg.__doc__,
            responses={**images, **ERRORS},
            openapi_extra={"requestBody": request_body(fields)},
        )


def serve(recipe: "Recipe", settings: ServiceSettings) -> int:
    """Serve until SIGTERM or Ctrl-C; then stop accepting, answer what is in flight, and exit.
    Returns the exit status."""
    import uvicorn

    service = Service(recipe, settings)
    app = BodyGuard(
        create_app(service),
        settings.max_upload,
        settings.body_timeout,
        answer=lambda status, code, detail: ApiError(status, _TITLES[status], code, detail).body(),
    )
    scheme = "https" if settings.tls_cert is not None else "http"
    log.info(
        "serving on %s://%s:%d (%s)",
        scheme,
        settings.host,
        settings.port,
        "API keys required" if settings.api_keys else "no API keys",
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # ours: one line a request, without keys (see create_app)
        timeout_graceful_shutdown=int(settings.timeout) + 5,
        # Admission counts requests (Service.run); connections are capped by the protocol, and
        # an idle one denies nobody (uvicorn's own limit counts connections: 70 idle ones were
        # enough to refuse everyone).
        limit_concurrency=None,
        http=guarded_protocol(settings.header_timeout, settings.max_connections),
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        proxy_headers=settings.behind_proxy,
        forwarded_allow_ips=list(settings.trusted_proxies) if settings.behind_proxy else [],
    )
    uvicorn.Server(config).run()
    return 0
