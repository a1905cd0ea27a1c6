"""The batch's machinery: a source as a job (``job``: a photo; ``video_job``: a video), the
engines that run jobs (``engines/``: local threads, Ray), the drop folder that feeds them
(``drop_folder``, ``watch``) and its ledger, and the report page of their results.

The run of a whole folder (:func:`operations.batch.run_batch`) sits above this package, with
the run's :class:`~operations.options.Options`; nothing here imports those. May import:
:mod:`operations.build`, :mod:`operations.pipeline`, :mod:`operations.stages`,
:mod:`operations.segmenters`, :mod:`operations.media` and the shared modules below them; never
:mod:`operations.service` (a peer).
"""
