#!/usr/bin/env python3
"""BackgroundSwap command line: replace the background of every photo in a folder.

Exit codes: 0 all files done, 1 some files failed (or the summary could not be written),
2 usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM.
Only the standard library is imported here: the settings (NumPy, OpenCV) load inside
:func:`main`, after it has taken Ctrl-C and SIGTERM in hand, and the models once a run starts.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from operations import __version__
from operations.errors import BackgroundSwapError, named

if TYPE_CHECKING:
    from operations.batch import BatchResult
    from operations.options import Options
    from operations.service.server import ServiceSettings

PROG = "backgroundswap"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The CLI, made from the settings' declarations (:class:`operations.options.Flag`): each
    flag's group, help, metavar and default is declared once, with its :class:`Options` field."""
    from operations.options import RUN, add_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Replace the background of every photo in a folder: segment the subject, "
        "then composite it over a new background (an image, or the photo's own background "
        "blurred).",
        epilog="Exit codes: 0 all done, 1 some files failed (or the summary could not be "
        "written), 2 usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM. "
        "Outputs that exist are skipped, so rerunning a command resumes it. "
        f"`{PROG} download NAME...` fetches model weights ahead of offline use; "
        f"`{PROG} report OUTPUT_DIR` rebuilds a run's review page; "
        f"`{PROG} review OUTPUT_DIR` serves it on loopback with an editor that fixes results; "
        f"`{PROG} config --show` prints the effective settings as TOML; "
        f"`{PROG} completion bash|zsh|fish` prints a completion script; "
        f"`{PROG} serve` serves remove.bg's API over HTTP (see `{PROG} serve --help`).",
    )
    groups = add_arguments(parser)
    groups[RUN].add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="read settings from a TOML file (keys: the long option names without dashes); "
        "flags given here win",
    )
    groups[RUN].add_argument(
        "--profile", metavar="NAME", help="with --config: the file's [NAME] table over its top"
    )
    groups[RUN].add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    """The parsed arguments as :class:`Options` (the parser's destinations are its fields)."""
    from operations.options import Options

    return Options(**{f.name: getattr(args, f.name) for f in fields(Options)})


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear the progress bar apart."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _configure_logging(options: Options) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("backgroundswap")
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = logging.ERROR if options.quiet else logging.DEBUG if options.verbose else logging.INFO
    logger.setLevel(level)


def download_main(argv: Sequence[str]) -> int:
    """``download NAME…``: fetch weights into the libraries' caches ahead of offline use."""
    from operations.models import DEFAULT_TIMEOUT
    from operations.options import Options
    from operations.segmenters import backends

    weights = {name: spec for b in backends().values() for name, spec in b.weights.items()}
    # A backend's name alone means its default weights (its first).
    aliases = {b.name: next(iter(b.weights)) for b in backends().values() if b.weights}
    known = [*weights, "vgg19", "sd"]
    parser = argparse.ArgumentParser(
        prog=f"{PROG} download",
        description="Fetch model weights into the caches the tool reads (see docs/models.md), "
        "for machines that run offline. Checksums are verified where the source "
        "publishes them.",
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help=f"any of: {', '.join(dict.fromkeys([*aliases, *known]))}",
    )
    parser.add_argument(
        "--sd-model",
        default=Options().sd_model,
        metavar="ID",
        help="with `sd`: the diffusers model to fetch (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="the longest any single network wait may take (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    from operations.models import WeightsError, fetch, torchvision_spec

    status = EXIT_OK
    for raw in args.names:
        name = aliases.get(raw, raw)
        if name not in known:
            print(
                f"{PROG}: error: unknown model {raw!r}; choose from "
                f"{', '.join([*aliases, *known])}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if name == "sd":
            from operations.stages.text_to_image import GenerationError, fetch_pipeline

            try:
                where = fetch_pipeline(args.sd_model, timeout=args.timeout)
            except GenerationError as exc:
                print(f"{PROG}: sd: {exc}", file=sys.stderr)
                status = EXIT_FAILED
            else:
                print(f"sd: {args.sd_model} is in {where}", file=sys.stderr)
            continue
        if name == "vgg19":
            from torchvision.models import VGG19_Weights

            spec = torchvision_spec("vgg19", VGG19_Weights.IMAGENET1K_V1)
        else:
            spec = weights[name]()
        if spec.cached.is_file():
            print(f"{name}: already cached at {spec.cached}", file=sys.stderr)
            continue
        try:
            fetch(spec, timeout=args.timeout, progress=True)
        except WeightsError as exc:
            print(f"{PROG}: {name}: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        checked = "checksum verified" if spec.checksum else "no published checksum"
        print(f"{name}: saved {spec.cached} ({checked})", file=sys.stderr)
    return status


def report_main(argv: Sequence[str]) -> int:
    """``report SOURCE``: rebuild the review page of an earlier run, processing nothing."""
    from operations.jobs.report import ReportError, rebuild
    from operations.options import OptionsError

    parser = argparse.ArgumentParser(
        prog=f"{PROG} report",
        description="Rebuild the review page of an earlier run from its results, without "
        "processing any photo again: an output folder written with --report, or a --summary "
        "JSON file (thumbnails missing are made from the files).",
    )
    parser.add_argument("source", type=Path, metavar="OUTPUT_DIR|SUMMARY.json")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="where to write the page (default: report.html in the run's output folder)",
    )
    args = parser.parse_args(argv)
    if args.report is not None and args.report.suffix.lower() not in (".html", ".htm"):
        error = OptionsError("--report", args.report, "name an .html file")
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from operations.options import flag_names

    with named(flag_names()):  # the run's settings named by their flags
        try:
            page = rebuild(args.source, args.report)
        except ReportError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"{PROG}: error: could not write the page: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"review page: {page}", file=sys.stderr)
    return EXIT_OK


def review_main(argv: Sequence[str]) -> int:
    """``review OUTPUT_DIR``: the run's review page on loopback, with an editor that fixes a
    result (strokes, another model, the knobs) and rewrites it."""
    from operations.options import OptionsError, check_installed, flag_names
    from operations.review.server import DEFAULT_PORT, LOOPBACK, TOKEN_VARIABLE

    parser = argparse.ArgumentParser(
        prog=f"{PROG} review",
        description="Serve a run's review page (an output folder written with --report) on "
        "this machine, with an editor that fixes a result: keep and remove brushes, another "
        "model, threshold, grow, feather, edge mode; Accept rewrites the result and keeps the "
        "fix for every later run of the folder.",
    )
    parser.add_argument("output", type=Path, metavar="OUTPUT_DIR")
    loopback = ", ".join(LOOPBACK)
    parser.add_argument(
        "--host", default="127.0.0.1", help=f"loopback only: {loopback} (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    parser.epilog = (
        "Every request needs the server's secret token: open the URL it prints (the token "
        "becomes a cookie); scripts send Authorization: Bearer TOKEN. A new random token each "
        f"start, or the one in ${TOKEN_VARIABLE} (an environment variable, never a flag: "
        "other users can read a process's flags)."
    )
    args = parser.parse_args(argv)
    with named(flag_names()):  # the run's settings named by their flags
        try:
            check_installed("review", None, "service", ("fastapi", "uvicorn"))
            if not 0 < args.port < 65536:
                raise OptionsError("--port", args.port, "must be between 1 and 65535")
            if args.host not in LOOPBACK:
                raise OptionsError(
                    "--host",
                    args.host,
                    "the review server rewrites files, so it listens on loopback only "
                    f"({loopback}); reach it from elsewhere through an SSH tunnel",
                )
            from operations.review.server import serve

            token = os.environ.get(TOKEN_VARIABLE) or None
            return serve(args.output.resolve(), args.host, args.port, token)
        except BackgroundSwapError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED


def config_main(argv: Sequence[str]) -> int:
    """``config --show [--config FILE] [--profile NAME] [flags…]``: the settings a run with
    these would use, as TOML (a file to start from, or to check what a profile gives)."""
    from operations.options import Options, flag_names
    from operations.shell.config import toml_of

    if "--show" not in argv:
        print(f"usage: {PROG} config --show [--config FILE] [--profile NAME] [flags …]",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    parser = build_parser()
    for action in parser._actions:
        action.required = False  # the settings alone: no run, no folders needed
    rest = [word for word in argv if word != "--show"]
    with named(flag_names()):
        try:
            full, where = _with_config(rest, parser)
            args = parser.parse_args(full)
            options = options_from_args(args)
            options.recipe()  # each value checked by its stage's settings, as a run would
        except BackgroundSwapError as exc:
            print(f"{PROG}: error: {_placed(exc, where, rest)}", file=sys.stderr)
            return EXIT_USAGE
    settings = {f.name: getattr(options, f.name) for f in fields(Options)}
    sys.stdout.write(toml_of(settings, flag_names()))
    return EXIT_OK


def completion_main(argv: Sequence[str]) -> int:
    """``completion bash|zsh|fish``: the completion script, made from the parser."""
    from operations.shell.completion import SHELLS, script

    if len(argv) != 1 or argv[0] not in SHELLS:
        print(f"usage: {PROG} completion {{{','.join(SHELLS)}}}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(script(argv[0], build_parser(), PROG))
    return EXIT_OK


# A batch's settings a server has no use for: per request, or for folders.
_NOT_SERVER_SETTINGS = (
    "input",
    "output",
    "bg",
    "prompt",
    "nst",
    "frame",
    "watch",
    "delete_input",
    "summary",
    "report",
    "recursive",
    "save_mask",
    "save_cutout",
    "overwrite",
    "engine",
    "events",
    "masks",  # the mask and its knobs come with each request (mask_file, mask_grow …)
    "keep_alpha",
    "mask_threshold",
    "mask_grow",
    "mask_feather",
)


def serve_main(argv: Sequence[str]) -> int:
    """``serve``: the HTTP service (remove.bg's API), models loaded once, until SIGTERM."""
    from operations.options import OptionsError, check_installed, flag_for, flag_names

    args = _serve_parser().parse_args(argv)
    server_flags = (
        "host",
        "port",
        "queue",
        "timeout",
        "api_keys",
        "no_auth",
        "max_upload_mb",
        "header_timeout",
        "body_timeout",
        "max_connections",
        "tls_cert",
        "tls_key",
        "behind_proxy",
    )
    names = {"trusted_proxies": "--trusted-proxy"}
    names = {**flag_names(), **names, **{k: "--" + k.replace("_", "-") for k in server_flags}}
    with named(names):
        try:
            check_installed(
                "serve", None, "service", ("fastapi", "uvicorn", "multipart", "prometheus_client")
            )
            options = options_from_args(args)
            defaults = type(options)()
            for name in _NOT_SERVER_SETTINGS:
                if getattr(options, name) != getattr(defaults, name):
                    raise OptionsError(flag_for(name), None, "is not a server setting")
            options = options.validated(batch=False)
            settings = _service_settings(args, options)
        except OSError as exc:
            print(f"{PROG}: error: --api-keys: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        except BackgroundSwapError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from operations.service.server import serve

    _configure_logging(options)
    return serve(options.recipe(), settings)


def _serve_parser() -> argparse.ArgumentParser:
    """The batch's parser less its batch-only flags (hidden, and refused if given), plus the
    server's own."""
    from operations.service.guard import (
        DEFAULT_BODY_TIMEOUT,
        DEFAULT_HEADER_TIMEOUT,
        DEFAULT_MAX_CONNECTIONS,
    )
    from operations.service.server import (
        DEFAULT_MAX_UPLOAD_MB,
        DEFAULT_PORT,
        DEFAULT_QUEUE,
        DEFAULT_TIMEOUT,
    )

    parser = build_parser()
    parser.prog = f"{PROG} serve"
    parser.description = (
        "Serve remove.bg's API (POST /v1.0/removebg), a page to try it (/), /healthz, "
        "/readyz and /metrics. The pipeline's options below are set once for the server; the "
        "background and the output format come with each request."
    )
    parser.epilog = None
    for action in parser._actions:
        if action.dest in _NOT_SERVER_SETTINGS:
            action.required, action.help = False, argparse.SUPPRESS
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    server.add_argument(
        "--api-keys",
        type=Path,
        metavar="FILE",
        help="API keys, one a line; a request gives one as X-Api-Key or Authorization: Bearer "
        "(without keys only a loopback --host is served, unless --no-auth)",
    )
    server.add_argument(
        "--no-auth", action="store_true", help="serve a public --host without keys, to anyone"
    )
    server.add_argument(
        "--queue",
        type=int,
        default=DEFAULT_QUEUE,
        help="requests that may wait beyond the --workers being worked on; more are answered "
        "503 with Retry-After (default: %(default)s)",
    )
    server.add_argument(
        "--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help="(default: %(default)s)"
    )
    server.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="the longest a request may take, waiting included (default: %(default)s)",
    )
    server.add_argument(
        "--allow-fetch",
        nargs="+",
        default=[],
        metavar="HOST",
        help="fetch image_url / bg_image_url from these hosts only (https; public addresses "
        "only, checked after the lookup and on every redirect); without it URLs are refused",
    )
    server.add_argument(
        "--allow-http-fetch", action="store_true", help="with --allow-fetch: plain http too"
    )
    network = parser.add_argument_group("the network (TLS, proxies, slow clients)")
    network.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve https: the "
                         "certificate chain (PEM); with --tls-key")  # fmt: skip
    network.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    network.add_argument(
        "--behind-proxy",
        action="store_true",
        help="a TLS-terminating proxy is in front: API keys on a public --host over plain "
        "HTTP are then allowed (without it or --tls-cert they are refused)",
    )
    network.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="with --behind-proxy: a proxy's address (or network) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed, for the log; repeat for more",
    )
    network.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="a request's line and headers must arrive within this, or 408 and cut "
        "(default: %(default)s)",
    )
    network.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="its body within this, or 408 and cut (default: %(default)s)",
    )
    network.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="connections open at once; one more is answered 503 and closed (idle ones deny "
        "nobody: the queue counts requests) (default: %(default)s)",
    )
    return parser


def _service_settings(args: argparse.Namespace, options: Options) -> ServiceSettings:
    """The server's settings from its flags (the API keys read from their file)."""
    from operations.options import OptionsError
    from operations.service.fetch import FetchSettings
    from operations.service.server import ServiceSettings, read_keys

    keys = read_keys(args.api_keys.read_text()) if args.api_keys is not None else ()
    if args.api_keys is not None and not keys:
        raise OptionsError("--api-keys", args.api_keys, "holds no key")
    return ServiceSettings(
        host=args.host,
        port=args.port,
        api_keys=keys,
        no_auth=args.no_auth,
        queue=args.queue,
        workers=options.workers,
        max_upload_mb=args.max_upload_mb,
        timeout=args.timeout,
        max_pixels=options.max_pixels,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        behind_proxy=args.behind_proxy,
        trusted_proxies=tuple(args.trusted_proxies),
        fetching=FetchSettings(
            hosts=tuple(args.allow_fetch),
            allow_http=args.allow_http_fetch,
            max_bytes=int(args.max_upload_mb * 1024 * 1024),
            timeout=min(20.0, args.timeout),
        ),
    )


class _SignalEvent(threading.Event):
    """An event a signal handler may set. A handler runs in the main thread between two of its
    bytecodes, perhaps while that thread holds the lock inside a :class:`threading.Event` (in
    its own ``wait``): setting such an event there deadlocks. This one takes no lock: a flag,
    and a byte down a pipe that its waiters ``select`` on."""

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write, b"!")  # never read: the pipe stays readable for every waiter

    def clear(self) -> None:
        raise NotImplementedError("a stop is not taken back")

    def wait(self, timeout: float | None = None) -> bool:
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set


class _StopSignals:
    """SIGTERM (``kill``, ``timeout``, systemd, Kubernetes, batch schedulers) stops a run the way
    Ctrl-C does: finished files are kept and counted, the images in progress are finished, the
    summary is written, and the exit code says which signal it was (128 + its number). A second
    signal stops waiting for the images in progress; the summary is still written. One that
    comes after that, while the process waits for abandoned images to finish, exits at once
    (every output is written atomically; the next run sweeps the temporaries)."""

    def __init__(self, *, armed: bool = True) -> None:
        # Not armed (while the settings' libraries load): a signal is only noted, since a
        # KeyboardInterrupt raised inside NumPy's or OpenCV's import leaves them half loaded;
        # :meth:`arm` then honours it.
        self.armed = armed
        self.received: int | None = None
        # Set by the first signal, beside the KeyboardInterrupt it raises: that exception can be
        # lost (raised inside a C library's callback, which swallows it), the event cannot.
        self.requested: threading.Event = _SignalEvent()
        self.abandon: threading.Event = _SignalEvent()  # set by the second signal
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: object) -> None:
        if self.received is None:  # the first: stop the batch where it is
            self.received = number
            self.requested.set()
            if self.armed:
                raise KeyboardInterrupt
            return
        if not self.abandon.is_set():  # the second: do not wait for the images in progress
            # os.write, not print: the main thread may be inside a write to stderr (its lock).
            os.write(2, f"{PROG}: not waiting for the images in progress\n".encode())
            self.abandon.set()
            return
        os._exit(128 + self.received)  # the third: at once

    def arm(self) -> None:
        """From now on the first signal raises :class:`KeyboardInterrupt`; one that came
        before raises it now."""
        self.armed = True
        if self.received is not None:
            raise KeyboardInterrupt

    def finish(self, *, program: bool) -> None:
        """In a program, later signals exit at once, and once the interpreter has finished
        waiting for its threads they are ignored (Python would otherwise put the default
        handlers back as it shuts down, and a late Ctrl-C would end it with SIGINT's status
        instead of ours); called in-process, the handlers are restored."""
        for number, handler in self._previous.items():
            signal.signal(number, self._exit_now if program else handler)
        if program and self._previous:
            atexit.register(lambda: [signal.signal(n, signal.SIG_IGN) for n in self._previous])

    @staticmethod
    def _exit_now(number: int, frame: object) -> None:
        os._exit(128 + number)


def _run(options: Options, stop: _StopSignals) -> BatchResult:
    """The batch, its libraries imported here (a Ctrl-C while they load is honoured once they
    have, with the summary)."""
    # Imported while a signal is only noted: a KeyboardInterrupt inside a C extension's import
    # (PyAV's, numba's) leaves it half loaded, and the summary could not be written then.
    from operations.warning_capture import capture_warnings

    capture_warnings(verbose=options.verbose)
    from operations.batch import interrupted_before_start, run_batch

    if options.matting != "off":
        from operations.stages.matting import warm_up

        # Our edge kernels compile here too (the first run on a machine): a KeyboardInterrupt
        # raised inside LLVM leaves half-made objects that print tracebacks as they go.
        warm_up("fast")

    try:
        stop.arm()
        return run_batch(options, abandon=stop.abandon, stop=stop.requested)
    except KeyboardInterrupt:  # before the batch could start: it handles its own afterwards
        return interrupted_before_start(options)


def one_malloc_arena() -> bool:
    """Have glibc's malloc keep one arena for every thread rather than one per thread, as it
    does by default (up to 8 per core): a batch's threads each take large arrays, and memory a
    thread's arena frees is rarely given back while the others' grow. Measured on ten photos
    (benchmarks/bench_rembg.py): the peak 1.32 → 1.05–1.16 GB with ISNet, 720 → 665 MB with
    U²-Netp, no slower (the arrays that matter are mapped whole, outside any arena). For the
    command only: a program that imports us keeps its own allocator's settings, and a user's
    ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES`` is theirs. Returns whether it took effect (not on
    other C libraries). Measured on 2 cores only."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_ARENA_MAX" in os.environ or "GLIBC_TUNABLES" in os.environ:
        return False  # the user's own choice
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    m_arena_max = -8  # glibc's malloc.h
    return bool(mallopt(m_arena_max, 1))


def main(argv: Sequence[str] | None = None) -> int:
    program = argv is None  # run as a command, not called from Python
    if program:
        one_malloc_arena()  # before any thread has allocated
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["download"]:
        return download_main(argv[1:])
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    if argv[:1] == ["review"]:
        return review_main(argv[1:])
    if argv[:1] == ["config"]:
        return config_main(argv[1:])
    if argv[:1] == ["completion"]:
        return completion_main(argv[1:])
    # Ctrl-C and SIGTERM are taken in hand before the settings' libraries load: a signal then
    # is noted, and honoured (with the summary) as soon as the run can write one.
    stop = _StopSignals(armed=False)
    try:
        return _main(argv, stop)
    finally:
        stop.finish(program=program)


def _main(argv: list[str], stop: _StopSignals) -> int:
    from operations.options import flag_names

    with named(flag_names()):  # every message names a setting by its flag
        return _cli(argv, stop)


def _with_config(
    argv: list[str], parser: argparse.ArgumentParser
) -> tuple[list[str], dict[str, str]]:
    """``--config FILE`` (and ``--profile``) read into command-line words before ``argv``'s own,
    which win; and where each of the file's flags was set (for its messages).

    Raises:
        ConfigError, OptionsError: the file cannot be used.
    """
    from operations.options import OptionsError
    from operations.shell.config import config_words

    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config", type=Path)
    first.add_argument("--profile")
    asked, _ = first.parse_known_args(argv)
    if asked.config is None:
        if asked.profile is not None:
            raise OptionsError("--profile", asked.profile, "goes with --config FILE")
        return argv, {}
    words, where = config_words(asked.config, asked.profile, parser)
    return words + argv, where


def _placed(exc: BackgroundSwapError, where: dict[str, str], argv: list[str]) -> str:
    """A refusal of a setting the settings file gave (not the command line) says where."""
    option = getattr(exc, "option", None)
    given_here = any(word == option or word.startswith(f"{option}=") for word in argv)
    if option in where and not given_here:
        return f"{where[option]}: {exc}"
    return str(exc)


def _cli(argv: list[str], stop: _StopSignals) -> int:
    from operations.shell.stdio import standard_streams

    def usage_error(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    parser = build_parser()
    try:
        full, where = _with_config(argv, parser)
    except BackgroundSwapError as exc:
        return usage_error(str(exc))
    args = parser.parse_args(full)
    try:
        with standard_streams(args) as finish:
            options = options_from_args(args).validated()
            _configure_logging(options)
            batch = _run(options, stop)
            finish()
    except BackgroundSwapError as exc:  # a setting refused, a model that cannot load, …
        return usage_error(_placed(exc, where, argv))
    if not options.quiet:
        print(batch.summary_line(), file=sys.stderr)
    if batch.interrupted:
        return 128 + (stop.received or signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM
    return batch.exit_code


if __name__ == "__main__":
    sys.exit(main())
