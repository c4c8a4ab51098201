"""What one service process is told: its limits and its access rule, fixed at start (scripts/serve.py's flags)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from models.inference import MAX_OUTPUT_PIXELS

__all__ = ["DEFAULT_MAX_INPUT_PIXELS", "DEFAULT_MAX_UPLOAD_MB", "MIN_INPUT_SIDE", "ServeConfig"]

DEFAULT_MAX_UPLOAD_MB = 25.0
# 4096 x 4096: a 16-megapixel phone photo fits; at x4 that is MAX_OUTPUT_PIXELS' 16384 x 16384.
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
# Smaller images are refused (422): a 1-pixel side holds no structure for a network to upscale.
MIN_INPUT_SIDE = 2


@dataclass(frozen=True)
class ServeConfig:
    """Limits and access of one process. `slots`: inferences at once (threads); `queue`: requests that may wait
    for a slot, beyond which 503 at once; `timeout_s`: the most a request may take from its first byte to its
    answer (the upload 408, waiting or upscaling 504); `api_key`: required on POST when not None."""

    slots: int = 1
    queue: int = 8
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1e6)
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    max_output_pixels: int = MAX_OUTPUT_PIXELS
    timeout_s: float = 60.0
    api_key: Optional[str] = None
    max_parts: int = 8

    def limits(self) -> dict:
        """The limits a client may want to know, as /v1/models lists them."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_input_pixels": self.max_input_pixels,
                "max_output_pixels": self.max_output_pixels, "timeout_s": self.timeout_s, "slots": self.slots,
                "queue": self.queue, "min_input_side": MIN_INPUT_SIDE, "formats": ["auto", "png", "jpg", "webp"]}
