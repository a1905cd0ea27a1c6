#!/usr/bin/env python3
"""BackgroundSwap command line: replace the background of every photo in a folder.

Exit codes: 0 all files done, 1 some files failed (or the summary could not be written),
2 usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM.
Only light modules are imported here; the model's libraries load once a run starts.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from operations import __version__, engines
from operations.background import BG_MATCH, FIT_MODES
from operations.encode import OUTPUT_FORMATS
from operations.harmonize import DEFAULT_STRENGTH
from operations.light_wrap import DEFAULT_WIDTH
from operations.matting import MATTING_METHODS
from operations.models import DEVICES
from operations.neural_style_transfer import OPTIMIZERS
from operations.options import Options, OptionsError
from operations.segmenters import backends, segmenter_help
from operations.video import VIDEO_CODECS

PROG = "backgroundswap"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _whole_number(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give two numbers X,Y: {text!r}") from None
    return x, y


def build_parser() -> argparse.ArgumentParser:
    """The CLI. Every destination is an :class:`Options` field, and every default is read from
    :class:`Options` (which reads the modules' own), so a default is typed in one place."""
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Replace the background of every photo in a folder: segment the subject, "
        "then composite it over a new background (an image, or the photo's own background "
        "blurred).",
        epilog="Exit codes: 0 all done, 1 some files failed (or the summary could not be "
        "written), 2 usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM. "
        "Outputs that exist are skipped, so rerunning a command resumes it. "
        f"`{PROG} download NAME...` fetches model weights ahead of offline use; "
        f"`{PROG} report OUTPUT_DIR` rebuilds a run's review page.",
    )
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "-i",
        "--input",
        type=Path,
        required=True,
        metavar="DIR|PHOTO",
        help="folder of photos, or one photo",
    )
    io.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="DIR|FILE",
        help="folder for the results (created if missing; must not be --input); with one photo "
        "in, also a file name (result.png, result.jpg)",
    )
    io.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="also read sub-folders; the output mirrors them",
    )
    io.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default=defaults.format,
        help="output format; 'same' keeps the input's (default: %(default)s)",
    )
    io.add_argument(
        "--quality",
        type=int,
        default=defaults.quality,
        metavar="1-100",
        help="JPEG/WebP quality (default: %(default)s)",
    )
    io.add_argument(
        "--overwrite",
        action="store_true",
        help="redo files whose outputs exist (default: skip them, so reruns resume)",
    )
    io.add_argument(
        "--save-mask", action="store_true", help="also write the subject's alpha as NAME.mask.png"
    )
    io.add_argument(
        "--save-cutout",
        action="store_true",
        help="also write the subject alone as a transparent NAME.cutout.png",
    )
    io.add_argument(
        "--max-pixels",
        type=_whole_number,
        default=defaults.max_pixels,
        metavar="N",
        help="refuse images with more pixels than this, e.g. decompression bombs "
        "(default: %(default)s)",
    )
    io.add_argument(
        "--summary",
        type=Path,
        metavar="FILE.json",
        help="write a JSON report: per file input, output, status, seconds, error, doubt",
    )
    io.add_argument(
        "--report",
        nargs="?",
        const=True,
        type=Path,
        metavar="FILE.html",
        help="write a review page: every result beside its input, the doubtful ones first "
        "(default FILE: report.html in the output folder; thumbnails in report_files/). "
        f"`{PROG} report OUTPUT_DIR` rebuilds it later",
    )

    bg = parser.add_argument_group("background")
    bg.add_argument(
        "-b",
        "--bg",
        type=Path,
        metavar="FILE|DIR",
        help="background image, a folder of them (see --bg-match), or a video (each frame of a "
        "video gets the frame at its time, looped; a photo gets the first frame)",
    )
    bg.add_argument(
        "--bg-match",
        choices=BG_MATCH,
        default=defaults.bg_match,
        help="with --bg DIR: cycle = each photo gets the next background in name order; name = "
        "the one named like the photo (cat.jpg → DIR/cat.*) (default: %(default)s)",
    )
    bg.add_argument(
        "-p",
        "--prompt",
        metavar="TEXT",
        help="generate the background from a text prompt with Stable Diffusion (when no --bg)",
    )
    bg.add_argument(
        "--fit",
        choices=FIT_MODES,
        default=defaults.fit,
        help="fit the background to each photo: cover = fill and centre-crop, "
        "contain = whole background with black bars, stretch = distort to fit "
        "(default: %(default)s)",
    )
    bg.add_argument(
        "--matting",
        choices=MATTING_METHODS,
        default=defaults.matting,
        help="edge refinement: fast = follow the photo's own edges and remove the old "
        "background's colour from them; quality = closed-form matting, several times slower; "
        "off = the model's soft mask as it is (default: %(default)s)",
    )
    bg.add_argument(
        "--blur",
        action="store_true",
        help="blur the background; without --bg, blur the photo's own background (portrait mode)",
    )
    bg.add_argument(
        "--blur-strength",
        type=float,
        default=defaults.blur_strength,
        metavar="PCT",
        help="blur sigma as a percentage of the photo's shorter side (default: %(default)s)",
    )
    bg.add_argument(
        "-n",
        "--nst",
        action="store_true",
        help="repaint each photo's own background in the style of the --bg image (VGG19 neural "
        "style transfer, masked so the subject is untouched)",
    )
    clip = parser.add_argument_group(
        "videos (.mp4 .mov .m4v .mkv .webm .avi …: every frame, with the sound, timing and "
        "rotation kept)"
    )
    clip.add_argument(
        "--video-codec",
        choices=tuple(VIDEO_CODECS),
        default=defaults.video_codec,
        help="h264 = .mp4 that plays everywhere; hevc = smaller .mp4; vp9 = .webm "
        "(default: %(default)s; cut-outs are ProRes 4444 .mov, which keeps the alpha)",
    )
    clip.add_argument(
        "--video-quality",
        type=int,
        default=defaults.video_quality,
        metavar="1-100",
        help="higher is better and larger; mapped onto the codec's CRF (%(default)s = x264's "
        "CRF 20) (default: %(default)s)",
    )
    clip.add_argument(
        "--temporal-smoothing",
        type=float,
        default=defaults.temporal_smoothing,
        metavar="0-0.99",
        help="steady a still subject's edge from frame to frame: the weight of the previous "
        "frame's alpha where the picture did not move (it follows at once where it did); "
        "0 = off (default: %(default)s)",
    )
    light = parser.add_argument_group("the scene's light (with a new background)")
    light.add_argument(
        "--harmonize",
        nargs="?",
        const=DEFAULT_STRENGTH,
        type=float,
        metavar="STRENGTH",
        help="move the subject's colour and light toward the new background's, 0-1 "
        f"(given alone: {DEFAULT_STRENGTH}); texture and detail are kept, the change is bounded",
    )
    light.add_argument(
        "--light-wrap",
        nargs="?",
        const=0,
        type=_whole_number,
        metavar="PX",
        help="let the background's light bleed PX pixels into the subject's edge "
        f"(given alone: {DEFAULT_WIDTH * 100:g} %% of the photo's long side)",
    )
    light.add_argument(
        "--shadow",
        action="store_true",
        help="cast a soft drop shadow of the subject on the new background",
    )
    light.add_argument(
        "--shadow-offset",
        type=_pair,
        default=defaults.shadow_offset,
        metavar="X,Y",
        help="the shadow's offset right and down, in %% of the long side (default: "
        f"{','.join(map(str, defaults.shadow_offset))})",
    )
    light.add_argument(
        "--shadow-softness",
        type=float,
        default=defaults.shadow_softness,
        metavar="PCT",
        help="the shadow's blur, in %% of the long side (default: %(default)s)",
    )
    light.add_argument(
        "--shadow-opacity",
        type=float,
        default=defaults.shadow_opacity,
        metavar="0-1",
        help="how dark the shadow is under the subject (default: %(default)s)",
    )
    sd = parser.add_argument_group("generated backgrounds (--prompt)")
    sd.add_argument("--negative-prompt", metavar="TEXT", help="what the background must not show")
    sd.add_argument(
        "--sd-model",
        default=defaults.sd_model,
        metavar="ID|DIR",
        help="diffusers model id or local pipeline folder (default: %(default)s, "
        "CreativeML OpenRAIL-M licence)",
    )
    sd.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="random seed: the same seed gives the same background (default: %(default)s)",
    )
    sd.add_argument(
        "--steps",
        dest="sd_steps",
        type=int,
        default=defaults.sd_steps,
        metavar="N",
        help="denoising steps (default: %(default)s)",
    )
    sd.add_argument(
        "--guidance",
        dest="sd_guidance",
        type=float,
        default=defaults.sd_guidance,
        metavar="SCALE",
        help="classifier-free guidance scale (default: %(default)s)",
    )
    sd.add_argument(
        "--sd-size",
        type=int,
        metavar="PX",
        help="long side to generate at (default: the model's native size)",
    )
    sd.add_argument(
        "--bg-per-image",
        action="store_true",
        help="generate one background per photo (seed + the photo's index) instead "
        "of one for the run",
    )
    sd.add_argument(
        "--sd-attention-slicing", action="store_true", help="lower GPU memory use, a little slower"
    )
    sd.add_argument(
        "--sd-cpu-offload",
        action="store_true",
        help="CUDA: keep only the running part of the model on the GPU",
    )
    nst = parser.add_argument_group("style transfer (--nst)")
    nst.add_argument(
        "--nst-size",
        type=int,
        default=defaults.nst_size,
        metavar="PX",
        help="working size, long side; larger = finer strokes, slower (default: %(default)s)",
    )
    nst.add_argument(
        "--nst-steps",
        type=int,
        default=defaults.nst_steps,
        metavar="N",
        help="loss evaluations at the finest of two pyramid levels; stops early "
        "when the loss stops improving (default: %(default)s)",
    )
    nst.add_argument(
        "--nst-optimizer",
        choices=OPTIMIZERS,
        default=defaults.nst_optimizer,
        help="(default: %(default)s)",
    )
    nst.add_argument(
        "--nst-content-weight",
        type=float,
        default=defaults.nst_content_weight,
        metavar="W",
        help="(default: %(default)g)",
    )
    nst.add_argument(
        "--nst-style-weight",
        type=float,
        default=defaults.nst_style_weight,
        metavar="W",
        help="(default: %(default)g)",
    )
    nst.add_argument(
        "--nst-tv-weight",
        type=float,
        default=defaults.nst_tv_weight,
        metavar="W",
        help="total-variation weight (default: %(default)g)",
    )
    nst.add_argument(
        "--nst-weights",
        type=Path,
        metavar="FILE",
        help="a local torchvision VGG19 weights file (vgg19-dcbb9e9d.pth)",
    )

    seg = parser.add_argument_group("segmentation")
    seg.add_argument(
        "-m",
        "--mode",
        default=defaults.mode,
        metavar="MODE",
        help=f"segmentation backend, by number or name: {segmenter_help()} (default: %(default)s)",
    )
    seg.add_argument(
        "--classes",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        metavar="NAME[,NAME...]",
        help="DeepLab/YOLO: the classes that count as subject, by the model's own names (VOC "
        "for DeepLab: person, dog, cat…; COCO for YOLO); default: every class it detects",
    )
    seg.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="a local weights file for the chosen backend, instead of the cache or a download",
    )
    seg.add_argument(
        "--offline",
        action="store_true",
        help="never use the network (also HF_HUB_OFFLINE=1 or YOLO_OFFLINE=1); weights must be "
        "cached or given with --weights",
    )
    seg.add_argument(
        "--device",
        choices=DEVICES,
        default=defaults.device,
        help="where models run (default: %(default)s; MediaPipe is CPU only)",
    )

    seg.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        metavar="N",
        help="segment up to N images per model call (DeepLab/YOLO; worth it on a GPU); raises "
        "--workers to at least N (default: %(default)s)",
    )

    for backend in backends().values():  # each backend's own settings, as it declares them
        group = parser.add_argument_group(f"--mode {backend.name}")
        for option in backend.options:
            group.add_argument(
                option.flag,
                type=option.type,
                choices=option.choices,
                default=getattr(defaults, option.field),
                metavar=option.metavar,
                help=f"{option.help} (default: %(default)s)",
            )

    scale = parser.add_argument_group("scaling out (--engine ray)")
    scale.add_argument(
        "--engine",
        choices=tuple(engines.ENGINES),
        default=defaults.engine,
        help="local: threads on this machine; ray: a Ray cluster's workers, "
        "same outputs (default: %(default)s)",
    )
    scale.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the cluster's head, HOST:PORT (its `ray start --head --port`), ray://HOST:PORT or "
        "auto (default: start a local Ray instance)",
    )
    scale.add_argument(
        "--cpus-per-worker",
        type=float,
        default=defaults.cpus_per_worker,
        metavar="F",
        help="CPUs per Ray worker: one worker (one model, F + 1 threads) per F CPUs of the "
        "cluster (default: %(default)s)",
    )
    scale.add_argument(
        "--gpus-per-worker",
        type=float,
        default=defaults.gpus_per_worker,
        metavar="F",
        help="GPUs per Ray worker (0.5: two workers share a GPU) (default: %(default)s)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        metavar="N",
        help="threads that decode, composite and encode in parallel (local engine; a Ray "
        "worker has --cpus-per-worker + 1) (default: %(default)s)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or summary line; errors only"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log every file")
    run.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    """The parsed arguments as :class:`Options` (the parser's destinations are its fields)."""
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

    weights = {name: spec for b in backends().values() for name, spec in b.weights.items()}
    # A backend's name alone means its default weights (its first).
    aliases = {b.name: next(iter(b.weights)) for b in backends().values() if b.weights}
    known = [*weights, "vgg19", "sd"]
    parser = argparse.ArgumentParser(
        prog=f"{PROG} download",
        description="Fetch model weights into the caches the tool reads (see the README's model "
        "table), for machines that run offline. Checksums are verified where the source "
        "publishes them.",
    )
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help=f"any of: {', '.join([*aliases, *known])}"
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
            from operations.text_to_image import GenerationError, fetch_pipeline

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
    from operations.report import ReportError, rebuild

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


class _StopSignals:
    """SIGTERM (``kill``, ``timeout``, systemd, Kubernetes, batch schedulers) stops a run the way
    Ctrl-C does: finished files are kept and counted, the images in progress are finished, the
    summary is written, and the exit code says which signal it was (128 + its number). A second
    signal stops waiting for the images in progress; the summary is still written. One that
    comes after that, while the process waits for abandoned images to finish, exits at once
    (every output is written atomically; the next run sweeps the temporaries)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.abandon = threading.Event()  # set by the second signal
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: object) -> None:
        if self.received is None:  # the first: stop the batch where it is
            self.received = number
            raise KeyboardInterrupt
        if not self.abandon.is_set():  # the second: do not wait for the images in progress
            print(f"{PROG}: not waiting for the images in progress", file=sys.stderr)
            self.abandon.set()
            return
        os._exit(128 + self.received)  # the third: at once

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


def main(argv: Sequence[str] | None = None) -> int:
    program = argv is None  # run as a command, not called from Python
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["download"]:
        return download_main(argv[1:])
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)

    def usage_error(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        options = options_from_args(args).validated()
    except OptionsError as exc:
        return usage_error(str(exc))
    _configure_logging(options)
    from operations.jobs import capture_warnings

    capture_warnings(verbose=options.verbose)
    from operations.batch import run_batch
    from operations.neural_style_transfer import StyleTransferError
    from operations.segmenters.base import SegmenterError
    from operations.text_to_image import GenerationError

    stop = _StopSignals()
    try:
        batch = run_batch(options, abandon=stop.abandon)
    except OptionsError as exc:
        return usage_error(str(exc))
    except (SegmenterError, StyleTransferError, GenerationError) as exc:  # a model failed to load
        return usage_error(str(exc))
    except KeyboardInterrupt:  # before the batch loop, which handles its own interruptions
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 128 + (stop.received or signal.SIGINT)
    finally:
        stop.finish(program=program)
    if not options.quiet:
        print(batch.summary_line(), file=sys.stderr)
    if batch.interrupted:
        return 128 + (stop.received or signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM
    return batch.exit_code


if __name__ == "__main__":
    sys.exit(main())
