"""The shell's conventions for the command line (``run.py``): settings files in TOML
(``config``), ``-`` for standard input and output (``stdio``), completion scripts for bash, zsh
and fish made from the parser's own declarations (``completion``).

Each works on the command line's parser and its arguments, before the run's
:class:`~operations.options.Options` is made; the run's events are the batch's
(:mod:`operations.jobs.events`). May import: :mod:`operations.options`, :mod:`operations.media`
and :mod:`operations.errors`; nothing imports it but ``run.py``.
"""
