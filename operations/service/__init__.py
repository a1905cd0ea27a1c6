"""The HTTP front door (``serve``): the app and its server (``server``), its page (``page``),
remove.bg's API (``removebg``), our own swap and mask API (``swap_api``), and fetching a
photo from a URL without trusting it (``fetch``).

The service is stateless: it turns a request into the same stage settings the command line
makes, builds the same pipeline (:mod:`operations.build`) and returns the result. May import:
:mod:`operations.build`, :mod:`operations.pipeline`, :mod:`operations.stages`,
:mod:`operations.segmenters`, :mod:`operations.media` and the shared modules below them; never
:mod:`operations.jobs` (a peer) or :mod:`operations.options`.
"""
