"""Video files: read frames, write frames, copy the sound — with PyAV (FFmpeg inside its wheel).

What this module keeps faithful, and how:

- **Timestamps**: every output frame carries its input frame's own timestamp and duration, in
  the input stream's time base, so the frame rate (variable too), the frame count and the
  duration are the input's.
- **Rotation**: a phone's clip is stored sideways with a display matrix saying how to turn it;
  frames are turned upright when decoded and written upright, without the matrix.
- **Sound**: audio streams are copied packet for packet (remuxed, never re-encoded) when the
  output container can hold their codec; a second reader of the input feeds them to the
  writer in step with the video, so they interleave and nothing is buffered whole.
- **Damage**: a frame that fails to decode is replaced by the last good one at its own
  timestamp (the rest of the video is kept); frames the decoder concealed are counted.
- **Colour**: input YUV is read with its own matrix (untagged: BT.709 for HD, BT.601 below, as
  players assume); output is BT.709 limited range, and tagged so.

Codecs (``--video-codec``): H.264 in ``.mp4`` (default: plays everywhere), HEVC in ``.mp4``, VP9
in ``.webm``. Transparent videos (cut-outs, ``--save-cutout``) take ``--video-format``:

- ``mov``: ProRes 4444 with a 16-bit alpha, for editors; its alpha comes back exactly from
  FFmpeg's own decoder.
- ``webm``: VP9 with alpha (``yuva420p``; the muxer marks the track ``alpha_mode``), for web pages
  and browsers. The alpha is a second VP9 stream beside the frames: libvpx's decoder and
  browsers read it, FFmpeg's native VP9 decoder drops it (decode with ``libvpx-vp9``).
- ``webp``: an animated WebP with alpha, looping, for stickers and previews (no sound).
- ``png``: a folder of RGBA PNG frames, ``NAME.cutout/000001.png`` on, the sound beside them as
  ``NAME.cutout/audio.m4a`` when the clip has sound, for the editing tools that import sequences.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from operations.errors import setting
from operations.media.files import ImageError

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream


@dataclass(frozen=True)
class VideoCodec:
    """An output codec and the container it goes in."""

    encoder: str  # FFmpeg's encoder name
    container: str  # FFmpeg's muxer name
    extension: str
    pix_fmt: str
    crf_max: int  # the encoder's worst CRF (its scale: --video-quality maps onto it)
    options: tuple[tuple[str, str], ...] = ()


VIDEO_CODECS = {
    # "veryfast": measured on 2 cores at 1080p, 37 fps (faster: 22 fps, superfast: 47 fps at
    # twice the size) — the x264 preset that leaves the pipeline room (benchmarks/bench_video).
    "h264": VideoCodec("libx264", "mp4", ".mp4", "yuv420p", 51, (("preset", "veryfast"),)),
    "hevc": VideoCodec(
        "libx265",
        "mp4",
        ".mp4",
        "yuv420p",
        51,
        (("preset", "veryfast"), ("x265-params", "log-level=error")),
    ),
    "vp9": VideoCodec(
        "libvpx-vp9",
        "webm",
        ".webm",
        "yuv420p",
        63,
        (("deadline", "realtime"), ("cpu-used", "8"), ("row-mt", "1")),
    ),
}
DEFAULT_VIDEO_CODEC = "h264"
# --video-quality is 1-100 like --quality (higher is better), mapped linearly onto the codec's
# CRF: 60 gives x264's CRF 20, which looks clean at 1080p.
DEFAULT_VIDEO_QUALITY = 60
# A folder of PNG frames, not a container: its "muxer" name.
SEQUENCE = "frames"
# Transparent videos keep their alpha, in the container --video-format names.
TRANSPARENT_FORMATS = {
    # ProRes 4444: 10-bit, with a 16-bit alpha plane.
    "mov": VideoCodec(
        "prores_ks", "mov", ".mov", "yuva444p10le", 0, (("profile", "4444"), ("alpha_bits", "16"))
    ),
    "webm": VideoCodec(
        "libvpx-vp9",
        "webm",
        ".webm",
        "yuva420p",
        63,
        (("deadline", "realtime"), ("cpu-used", "8"), ("row-mt", "1")),
    ),
    # WebP's quality scale is --video-quality's own (0-100); its alpha is lossless.
    "webp": VideoCodec("libwebp_anim", "webp", ".webp", "yuva420p", 0),
    "png": VideoCodec("png", SEQUENCE, "", "rgba", 0),
}
DEFAULT_VIDEO_FORMAT = "mov"
# A mask as a folder of frames (with --video-format png): 8-bit grey PNGs.
MASK_SEQUENCE = VideoCodec("png", SEQUENCE, "", "gray", 0)


def crf(codec: VideoCodec, quality: int) -> int:
    """``--video-quality`` (1-100, higher is better) on the codec's CRF scale."""
    return round(codec.crf_max * (100 - quality) / 100)


@functools.cache
def _av() -> Any:
    """PyAV, imported when a video is met (the photo path never pays for it); once."""
    try:
        import av
    except ImportError:  # pragma: no cover - av is a core requirement
        raise ImageError("reading videos needs PyAV: pip install av") from None
    av.logging.set_level(av.logging.PANIC)  # damage is counted and reported, not printed
    return av


def open_input(path: Path, max_pixels: int | None = None) -> av.container.InputContainer:
    """Open a video file for reading.

    Raises:
        ImageError: not a video FFmpeg can read, or no video stream in it.
    """
    av = _av()
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        container = av.open(str(path), metadata_errors="replace")
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("input disappeared: deleted or moved during the run") from None
    except (av.FFmpegError, OSError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.EBUSY:
            # What FFmpeg says of a header whose frames it will not allocate (60000×60000).
            limit = f" of {max_pixels / 1e6:.0f} MP ({setting('max_pixels')})" if max_pixels else ""
            raise ImageError(
                "its frames are larger than FFmpeg will open (a corrupt header, or far over "
                f"the pixel limit{limit})"
            ) from None
        raise ImageError(f"not a video FFmpeg can read: {_reason(exc)}") from None
    if not container.streams.video:
        container.close()
        raise ImageError("holds no video stream")
    kind = container.format.name
    if kind in STILL_FORMATS or kind.endswith("_pipe"):  # FFmpeg reads a photo as a video
        container.close()
        raise ImageError(
            f"not a video: a still image ({kind.removesuffix('_pipe')}) under a video's name; "
            "give it a photo's extension"
        )
    return container


# FFmpeg's demuxers of still images (a JPEG named .mp4 opens as a one-frame "video").
STILL_FORMATS = frozenset({"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "tiff_pipe", "bmp_pipe"})


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@dataclass
class Frame:
    """One decoded frame, upright, with its timestamp (in the stream's time base)."""

    rgb: np.ndarray | None  # None: the frame failed to decode
    pts: int
    duration: int


class VideoReader:
    """The first video stream of a file, decoded frame by frame (frames in display order).

    Raises:
        ImageError: see :func:`open_input`; frames over ``max_pixels``.
    """

    def __init__(self, path: Path, *, max_pixels: int | None = None) -> None:
        self.path = path
        self.container = open_input(path, max_pixels)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # FFmpeg's frame threads: decoding keeps up
        context = self.stream.codec_context
        if max_pixels is not None and context.width * context.height > max_pixels:
            self.close()
            raise ImageError(
                f"{context.width}×{context.height} frames are over the pixel "
                f"limit of {max_pixels / 1e6:.0f} MP ({setting('max_pixels')})"
            )
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.rate: Fraction | None = self.stream.average_rate or self.stream.guessed_rate
        self.failed = 0  # frames that could not be decoded
        self.damaged = 0  # frames decoded with concealed errors
        self.rotation = 0  # degrees counter-clockwise applied to make frames upright

    @property
    def expected_frames(self) -> int:
        """The frame count the container states, else estimated from its duration (0: unknown)."""
        if self.stream.frames:
            return int(self.stream.frames)
        duration = self.stream.duration
        seconds = float(duration * self.time_base) if duration else None
        if seconds is None and self.container.duration:
            seconds = self.container.duration / 1_000_000
        return round(seconds * float(self.rate)) if seconds and self.rate else 0

    def frames(self) -> Iterator[Frame]:
        """Every frame, upright, as RGB. A frame the decoder could not give (its packet failed,
        or a frame that depended on it was dropped) comes as ``rgb=None`` at its own timestamp,
        so the caller keeps the count and the timing: every packet's timestamp is a frame due,
        and one passed over by the frames that come out was lost."""
        av = _av()
        due: list[int] = []  # heap: the timestamps of the packets sent, not yet seen as frames
        last_duration = 0
        shown = -math.inf  # the last frame's timestamp

        def lost_before(pts: float) -> Iterator[Frame]:
            while due and due[0] <= pts:
                missing = heapq.heappop(due)
                if missing < pts and missing > shown:
                    self.failed += 1
                    yield Frame(None, missing, last_duration)

        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.FFmpegError:  # a damaged container: what is left cannot be found
                break
            if packet.pts is not None and packet.size:
                heapq.heappush(due, packet.pts)
            try:
                decoded = self.stream.decode(packet)
            except av.FFmpegError:
                continue  # its frame is counted as lost when a later one comes out
            for frame in decoded:
                if frame.pts is not None and frame.pts <= shown:  # never twice, never backwards
                    continue
                if frame.pts is not None:
                    yield from lost_before(frame.pts)
                last_duration = frame.duration or last_duration
                shown = frame.pts if frame.pts is not None else shown
                yield self._frame(frame)
        yield from lost_before(math.inf)

    def _frame(self, frame: av.VideoFrame) -> Frame:
        tagged = frame.colorspace if frame.colorspace not in (2, 0) else None  # 2: unspecified
        colorspace: str | None
        if tagged is None:  # untagged: what players assume
            colorspace = "itu709" if frame.height >= 720 else "itu601"
        elif tagged == 1:
            colorspace = "itu709"
        elif tagged in (5, 6):
            colorspace = "itu601"
        else:
            colorspace = None  # let FFmpeg read it from the frame
        rgb: np.ndarray = frame.to_ndarray(
            format="rgb24", src_colorspace=colorspace, src_color_range=frame.color_range or None
        )
        self.rotation = frame.rotation % 360
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, self.rotation // 90))
        self.damaged += bool(frame.is_corrupt)
        return Frame(
            rgb, frame.pts if frame.pts is not None else 0, frame.duration or self.frame_duration
        )

    def missing(self, frames: int, end: float | None) -> tuple[int, float]:
        """(frames, seconds) the container states but the file did not hold (a clip cut short,
        a half-copied file), given the ``frames`` read and the ``end`` (seconds from the first
        frame) of the last. (0, 0.0) when nothing is missing or the container states nothing."""
        stated = self.stream.duration
        seconds = float(stated * self.time_base) if stated else None
        if seconds is None and self.container.duration:
            seconds = self.container.duration / 1_000_000
        short = max(0.0, seconds - end) if seconds is not None and end is not None else 0.0
        counted = max(0, int(self.stream.frames) - frames) if self.stream.frames else 0
        per_second = float(self.rate) if self.rate else 0.0
        by_time = round(short * per_second) if per_second else 0
        lost = counted if self.stream.frames else by_time  # a stated count is the surer
        if lost < 1 or (per_second and short < 1.5 / per_second and not counted):
            return 0, 0.0  # within a frame: rounding in the container's own numbers
        return lost, round(short, 2)

    @property
    def frame_duration(self) -> int:
        """One frame's duration at the average rate, in the time base (for frames that do not
        say theirs: the last one, often)."""
        return max(1, round(1 / (self.rate * self.time_base))) if self.rate else 1

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Frames in, a video file out: one video stream in ``codec``, the input's timing, and
    ``audio_from``'s audio streams copied where the container takes them.

    Args:
        path: the file to write (a temporary name: the caller renames it when it is whole).
        codec: the output codec.
        width, height: the frames' size (even sizes for 4:2:0; odd ones are padded by one).
        time_base: the input stream's time base (frame timestamps are given in it).
        rate: the input's average frame rate (the encoder's rate control reads it).
        quality: ``--video-quality`` (1-100).
        audio_from: the input file whose audio is copied, if any.
    """

    def __init__(
        self,
        path: Path,
        codec: VideoCodec,
        width: int,
        height: int,
        *,
        time_base: Fraction,
        rate: Fraction | None,
        quality: int = DEFAULT_VIDEO_QUALITY,
        audio_from: Path | None = None,
    ) -> None:
        av = _av()
        self.codec = codec
        self.time_base = time_base  # the frames' (the muxer may change its stream's own)
        options = {"movflags": "+faststart"} if codec.container in ("mp4", "mov") else {}
        if codec.container == "webp":
            options = {"loop": "0"}  # a sticker or preview loops for ever
        self.container = av.open(str(path), "w", format=codec.container, options=options)
        try:
            stream = self.container.add_stream(codec.encoder, rate=rate or Fraction(30))
            # 4:2:0 and 4:2:2 need even sizes: the frame is padded by a copied row or column.
            chroma_even = codec.pix_fmt.startswith(("yuv420", "yuva420", "yuv422"))
            self.padded = (
                width + (width % 2 if chroma_even else 0),
                height + (height % 2 if chroma_even else 0),
            )
            stream.width, stream.height = self.padded
            stream.pix_fmt = codec.pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            settings = dict(codec.options)
            if codec.crf_max:
                settings["crf"] = str(crf(codec, quality))
            if codec.encoder == "libvpx-vp9":
                settings["b"] = "0"  # constant quality
            if codec.encoder == "libwebp_anim":
                settings["quality"] = str(quality)
            stream.options = settings
            context = stream.codec_context
            if not codec.pix_fmt.startswith("gray"):
                context.colorspace, context.color_primaries, context.color_trc = 1, 1, 1
                context.color_range = 1  # MPEG (limited) range, BT.709
            self.stream = stream
            self.audio = _AudioCopy(audio_from, self.container) if audio_from else None
        except BaseException:
            self.container.close()
            raise

    def write(self, image: np.ndarray, pts: int, duration: int) -> None:
        """Encode one ``H×W×3`` (or ``×4`` with alpha) ``uint8`` frame at ``pts``."""
        if image.shape[1] != self.padded[0] or image.shape[0] != self.padded[1]:
            rows, columns = self.padded[1] - image.shape[0], self.padded[0] - image.shape[1]
            image = np.pad(image, ((0, rows), (0, columns), (0, 0)), mode="edge")
        frame = _packed_frame(image)
        frame = frame.reformat(
            format=self.codec.pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG"
        )
        _clear_padding(frame)
        frame.pts, frame.time_base = pts, self.time_base
        frame.duration = duration
        if self.audio is not None:
            self.audio.pump(float(pts * self.time_base))
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and finish the file (its index, the remaining audio)."""
        try:
            self.container.mux(self.stream.encode(None))
            if self.audio is not None:
                self.audio.pump(math.inf)
                self.audio.close()
        finally:
            self.container.close()

    def abandon(self) -> None:
        """Stop without finishing the file (it is removed by the caller)."""
        with contextlib.suppress(Exception):
            if self.audio is not None:
                self.audio.close()
        with contextlib.suppress(Exception):
            self.container.close()

    @property
    def audio_copied(self) -> list[str]:
        return self.audio.copied if self.audio is not None else []

    @property
    def audio_dropped(self) -> list[str]:
        return self.audio.dropped if self.audio is not None else []


class FrameFolder:
    """A transparent video as a folder of PNG frames (``000001.png`` on, in display order: one
    file per frame of the clip, a frame that failed to decode repeated as in a video), the
    clip's sound beside them as ``audio.m4a``. The same calls as :class:`VideoWriter`.

    Args:
        folder: the folder to fill (a temporary: the caller renames it when it is whole).
        codec: :data:`TRANSPARENT_FORMATS`'s ``png`` (RGBA) or :data:`MASK_SEQUENCE` (grey).
        time_base: the frames' timestamps' unit (the sound is copied up to each frame's time).
        audio_from: the input whose sound is copied, if any.
    """

    AUDIO = "audio.m4a"

    def __init__(
        self,
        folder: Path,
        codec: VideoCodec,
        *,
        time_base: Fraction,
        audio_from: Path | None = None,
    ) -> None:
        self.folder, self.codec, self.time_base = folder, codec, time_base
        self.count = 0
        self.container: av.container.OutputContainer | None = None
        self.audio: _AudioCopy | None = None
        self.dropped: list[str] = []
        if audio_from is not None:
            self._open_audio(audio_from)

    def _open_audio(self, source: Path) -> None:
        path = self.folder / self.AUDIO
        self.container = _av().open(str(path), "w", format="mp4")
        try:
            self.audio = _AudioCopy(source, self.container)
        except BaseException:
            self.abandon()
            raise
        if not self.audio.streams:  # silent, or no sound an .m4a holds: no audio file
            self.dropped = self.audio.dropped
            self.abandon()
            path.unlink(missing_ok=True)

    def write(self, image: np.ndarray, pts: int, duration: int) -> None:
        """Write the next frame (numbered in order; ``pts`` times the sound copied so far)."""
        from operations.media.png import encode_png

        if self.codec.pix_fmt == "gray" and image.ndim == 3:
            image = image[:, :, 0]
        self.count += 1
        (self.folder / f"{self.count:06d}.png").write_bytes(encode_png(image))
        if self.audio is not None:
            self.audio.pump(float(pts * self.time_base))

    def close(self) -> None:
        """Finish the sound's file."""
        if self.audio is not None and self.container is not None:
            self.audio.pump(math.inf)
            self.audio.close()
            self.container.close()

    def abandon(self) -> None:
        """Stop without finishing (the caller removes the folder)."""
        with contextlib.suppress(Exception):
            if self.audio is not None:
                self.audio.close()
        with contextlib.suppress(Exception):
            if self.container is not None:
                self.container.close()
        self.audio, self.container = None, None

    @property
    def audio_copied(self) -> list[str]:
        return self.audio.copied if self.audio is not None else []

    @property
    def audio_dropped(self) -> list[str]:
        return self.audio.dropped if self.audio is not None else self.dropped


def open_writer(
    path: Path,
    codec: VideoCodec,
    width: int,
    height: int,
    *,
    time_base: Fraction,
    rate: Fraction | None,
    quality: int = DEFAULT_VIDEO_QUALITY,
    audio_from: Path | None = None,
) -> VideoWriter | FrameFolder:
    """The writer of ``codec``: a :class:`VideoWriter`, or a :class:`FrameFolder` (``path`` is
    then a folder)."""
    if codec.container == SEQUENCE:
        return FrameFolder(path, codec, time_base=time_base, audio_from=audio_from)
    return VideoWriter(
        path,
        codec,
        width,
        height,
        time_base=time_base,
        rate=rate,
        quality=quality,
        audio_from=audio_from,
    )


def _clear_padding(frame: av.VideoFrame) -> None:
    """Zero the bytes past each row's end in every plane (planar formats: a sample of 1 byte,
    or 2 for the 9-16-bit ones). The encoder reads them (x264 did): left as allocated, whatever
    the memory held changed the encoded video from run to run (checked: the same frames gave
    different files under load; with the padding zeroed, the same file every time)."""
    wide = frame.format.name.endswith(("le", "be"))
    for plane in frame.planes:
        used = plane.width * (2 if wide else 1)
        if plane.line_size > used:
            rows = np.frombuffer(memoryview(plane), np.uint8)[: plane.height * plane.line_size]
            rows.reshape(plane.height, plane.line_size)[:, used:] = 0


def _packed_frame(image: np.ndarray) -> av.VideoFrame:
    """An RGB or RGBA frame holding ``image``: copied into the frame's plane by NumPy, which
    lets go of the GIL while it copies (PyAV's ``from_ndarray`` holds it: on a 1080p video the
    encoding thread then held up the pipeline's other threads for milliseconds a frame)."""
    height, width, channels = image.shape
    frame = _av().VideoFrame(width, height, "rgba" if channels == 4 else "rgb24")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)
    rows[:, : width * channels] = image.reshape(height, width * channels)
    rows[:, width * channels :] = 0  # the rows' padding too (see _clear_padding)
    return frame


class _AudioCopy:
    """The input's audio streams, copied packet by packet into ``output`` as the video advances
    (a reader of its own, so the video's decoder and the copy never wait on each other). A codec
    the container cannot hold is converted to one it can (AAC → Opus for WebM); only when no
    conversion exists is a stream dropped."""

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self.input = open_input(source)
        self.output = output
        self.copied: list[str] = []
        self.dropped: list[str] = []
        self.streams: dict[int, av.stream.Stream] = {}
        self.converters: dict[int, _AudioConvert] = {}
        for stream in self.input.streams.audio:
            name = stream.codec_context.name
            if name in output.supported_codecs:
                self.streams[stream.index] = output.add_stream_from_template(stream)
                self.copied.append(name)
            elif (target := _conversion(output)) is not None:
                self.converters[stream.index] = _AudioConvert(stream, output)
                self.streams[stream.index] = self.converters[stream.index].stream
                self.copied.append(f"{target} (from {name})")
            else:
                self.dropped.append(name)
        self.packets = self.input.demux(*self.streams_in) if self.streams else iter(())
        self.waiting: av.Packet | None = None

    @property
    def streams_in(self) -> list[av.stream.Stream]:
        return [s for s in self.input.streams.audio if s.index in self.streams]

    def pump(self, until: float) -> None:
        """Copy (or convert) every audio packet that starts before ``until`` seconds."""
        av = _av()
        while True:
            packet = self.waiting
            if packet is None:
                try:
                    packet = next(self.packets)
                except (StopIteration, av.FFmpegError):
                    self.packets = iter(())
                    if until == math.inf:
                        for pending in self.converters.values():
                            pending.flush()
                    return
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            start = float(packet.dts * packet.time_base)
            if start >= until:
                self.waiting = packet
                return
            self.waiting = None
            converter = self.converters.get(packet.stream.index)
            if converter is not None:
                converter.convert(packet)
                continue
            packet.stream = self.streams[packet.stream.index]
            self.output.mux(packet)

    def close(self) -> None:
        self.input.close()


# Audio encoders for containers that cannot hold the input's codec (by container format).
AUDIO_CONVERSIONS = {"webm": ("libopus", 48000)}


def _conversion(output: av.container.OutputContainer) -> str | None:
    """The codec a container's unsupported audio is converted to, if there is one here."""
    target = AUDIO_CONVERSIONS.get(output.format.name.split(",")[0])
    if target is None:
        return None
    try:
        _av().codec.Codec(target[0], "w")
    except Exception:  # noqa: BLE001 - this FFmpeg build has no such encoder
        return None
    return "opus" if target[0] == "libopus" else target[0]


class _AudioConvert:
    """One audio stream decoded, resampled to the encoder's rate and encoded again."""

    stream: av.audio.stream.AudioStream

    def __init__(
        self, source: av.audio.stream.AudioStream, output: av.container.OutputContainer
    ) -> None:
        av = _av()
        encoder, rate = AUDIO_CONVERSIONS[output.format.name.split(",")[0]]
        self.source, self.output = source, output
        layout = source.codec_context.layout.name or "stereo"
        stream = output.add_stream(encoder, rate=rate, layout=layout)
        assert isinstance(stream, av.audio.stream.AudioStream)  # an audio encoder's
        self.stream = stream
        self.resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)

    def convert(self, packet: av.Packet) -> None:
        av = _av()
        try:
            frames = self.source.decode(packet)
        except av.FFmpegError:
            return  # a damaged audio packet: a moment of silence
        for frame in frames:
            self._encode(self.resampler.resample(frame))

    def flush(self) -> None:
        self._encode(self.resampler.resample(None))
        self.output.mux(self.stream.encode(None))

    def _encode(self, frames: list) -> None:
        for frame in frames:
            self.output.mux(self.stream.encode(frame))


class BackgroundVideo:
    """A video used as the background: the frame shown at any time of the input, looped when
    the input is longer and simply not read to its end when the input is shorter."""

    def __init__(self, path: Path, *, max_pixels: int | None = None) -> None:
        self.path, self.max_pixels = path, max_pixels
        self._open()
        self.current: np.ndarray | None = None
        self.offset = 0.0  # seconds added by the loops so far

    def _open(self) -> None:
        self.reader = VideoReader(self.path, max_pixels=self.max_pixels)
        self.frames = self.reader.frames()
        self.upcoming: Frame | None = None
        self.origin: float | None = None  # the first frame's time: this loop's zero
        self.end = 0.0  # the end of the last frame read, in this loop's time

    def _next(self) -> Frame | None:
        for frame in self.frames:
            if frame.rgb is not None:
                return frame
        return None

    def at(self, seconds: float) -> np.ndarray:
        """The background frame on screen ``seconds`` after the start.

        Raises:
            ImageError: the background video has no frame that decodes.
        """
        while True:
            if self.upcoming is None:
                self.upcoming = self._next()
                if self.upcoming is None:  # the end: loop
                    if self.current is None:
                        raise ImageError(f"background {self.path.name}: no frame decodes")
                    self.reader.close()
                    self.offset += max(self.end, 1e-3)
                    self._open()
                    continue
            time_base = self.reader.time_base
            if self.origin is None:
                self.origin = float(self.upcoming.pts * time_base)
            start = float(self.upcoming.pts * time_base) - self.origin
            # (A tenth of a millisecond's tolerance: both clocks are rounded time bases.)
            if self.current is not None and start + self.offset > seconds + 1e-4:
                return self.current
            self.current = self.upcoming.rgb
            self.end = float((self.upcoming.pts + self.upcoming.duration) * time_base) - self.origin
            self.upcoming = None

    def first(self) -> np.ndarray:
        """The first frame (a photo's background, and the style image of ``--nst``)."""
        return self.at(0.0)

    def close(self) -> None:
        self.reader.close()
