"""The reference's import path for the HTML page (`from util import html`; `html.HTML`); it lives in util.reports."""
from .reports.html import HTML

__all__ = ["HTML"]
