"""Media in and out: files and their names, decoding and encoding images, PNG, videos, the
structure of container files, resizing.

Everything here works on bytes, paths and arrays and knows nothing of models, stages or runs.
May import: :mod:`operations.errors` and each other. Imported by every package above.
"""
