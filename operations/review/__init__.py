"""The review server (``review OUTPUT_DIR``): a run's review page on loopback, with an editor
that fixes a result and rewrites it (``server``, its editor ``page``), over a ``session`` that
reads the run back from its results and redoes one photo as the run would.

A front door: it rebuilds the run's :class:`~operations.options.Options` and runs the batch's
own photo job. May import everything below the front doors: :mod:`operations.batch`,
:mod:`operations.options`, :mod:`operations.jobs`, :mod:`operations.build`,
:mod:`operations.pipeline` and what they stand on; nothing imports it but ``run.py``.
"""
