"""The image stages of the pipeline, one module each: backgrounds (their kinds and the run's
source), edge refinement (``matting`` and its compiled ``matting_kernels``), compositing,
harmonising, light wrap, the drop shadow, framing, the look that puts them together, blur,
style transfer, generation from a prompt, temporal smoothing for videos.

Each stage is a pure function over arrays where it can be, with a frozen ``*Settings`` of what
it reads. May import: :mod:`operations.media`, :mod:`operations.models`,
:mod:`operations.errors`, :mod:`operations.warning_capture`, :mod:`operations.doubt` and each
other; never the segmenters (a peer), the pipeline or anything above it.
"""
