"""Shared helpers: registries, errors, image conversion, HTML pages and the training visualizer."""
