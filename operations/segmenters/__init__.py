"""Segmentation backends, one module each; registered by name in :mod:`operations.foreground`."""
