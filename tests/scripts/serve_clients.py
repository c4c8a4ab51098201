"""What the tests of scripts/serve.py share: the serving package, an app over the tiny runs of conftest.py's
`runs`, and images made in memory."""
from __future__ import annotations

import importlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from helpers import ROOT


def serving_module(name: str = "serving") -> ModuleType:
    """scripts/serving or one of its modules, imported (scripts/ is not a package: its folder joins sys.path
    while it is imported)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))
        return importlib.import_module(name)


def client(serving: ModuleType, checkpoints: Path, names: Sequence[str], backend: str = "torch",
           **limits: Any) -> Iterator[TestClient]:
    """A TestClient of the app serving `names` from `checkpoints` on the CPU in fp32 (loaded as it starts)."""
    config = serving.ServeConfig(**limits)
    app = serving.create_app(lambda: serving.load_models(list(names), str(checkpoints), "-1", True,
                                                         max_output_pixels=config.max_output_pixels,
                                                         backend=backend), config)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def image_bytes(w: int = 13, h: int = 10, mode: str = "RGB", fmt: str = "PNG", seed: int = 0, **save: Any) -> bytes:
    """A random image of `mode` encoded as `fmt`."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "CMYK": 4}[mode]
    values = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    img = Image.fromarray(values[:, :, 0] if channels == 1 else values, mode=mode)
    out = io.BytesIO()
    img.save(out, format=fmt, **save)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img
