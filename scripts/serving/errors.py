"""The service's refusals: one exception, one JSON shape `{"error": CODE, "detail": one line}`, one status each.

Every refusal a client can cause is an `ApiError` raised where the problem is found (intake, slots, the
upscale step); the app turns it into its response, so no bad input reaches a 500.
"""
from __future__ import annotations

from typing import Dict, Optional

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response"]


class ApiError(Exception):
    """A request refused: HTTP `status`, a stable machine-readable `code` and a one-line `detail` for people.

    `reason` labels the rejection in the metrics (rejected requests by reason): the code unless given.
    """

    def __init__(self, status: int, code: str, detail: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, " ".join(detail.split())  # one line
        self.headers = headers or {}


def error_response(status: int, code: str, detail: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    """The JSON body every error answers with."""
    return JSONResponse({"error": code, "detail": " ".join(detail.split())}, status_code=status, headers=headers)
