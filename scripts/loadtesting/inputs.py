"""What the clients upload: real photos from a folder (0.1 to 2 megapixels, sent as they are) and the service's
own corpus of hostile files (made in memory), each the kind of file an upload form receives by mistake or malice."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from PIL import Image
from serving.hostile import hostile_corpus, multipart

from util.images.folders import list_inputs
from util.images.reading import peek_image


def pick_photos(folder: Path, min_mp: float, max_mp: float) -> Tuple[List[Path], List[Dict[str, str]]]:
    """The images under `folder` (its subfolders too) of `min_mp`..`max_mp` megapixels, and the skipped ones with
    the reason, from their headers only."""
    chosen: List[Path] = []
    skipped: List[Dict[str, str]] = []
    for path in list_inputs(str(folder), recursive=True):
        header = peek_image(path)
        if header is None:
            skipped.append({"path": path, "reason": "not a readable image"})
            continue
        (width, height), _ = header
        megapixels = width * height / 1e6
        if min_mp <= megapixels <= max_mp:
            chosen.append(Path(path))
        else:
            skipped.append({"path": path, "reason": f"{width}x{height} is {megapixels:.3f} MP, outside "
                                                    f"{min_mp}..{max_mp} MP"})
    return chosen, skipped


@dataclass(frozen=True)
class Upload:
    """One request body a client sends, with its Content-Type and the status it must get (besides 503)."""
    kind: str  # "photo" or the hostile case's name
    body: bytes
    content_type: str
    expected: int


def photo_uploads(photos: Sequence[Path]) -> List[Upload]:
    """Each photo as it is, in a multipart form's `file` field, as a browser's upload form sends it."""
    return [Upload("photo", *multipart([("file", path.name, path.read_bytes())]), 200) for path in photos]


def hostile_uploads(max_upload_bytes: int) -> List[Upload]:
    """The refused cases of the service's hostile corpus (serving/hostile.py: truncated and 0-byte files, text,
    a bomb's header, a multipart of 200 parts, ...), each with its documented 4xx."""
    return [Upload(case.name, case.body, case.content_type, case.status)
            for case in hostile_corpus(max_upload_bytes) if case.status >= 400]


def photo_of_size(source: Path, size: Tuple[int, int]) -> bytes:
    """`source`'s centre cut to `size` (W, H) as PNG bytes: the single-latency photo (512x384), a real one."""
    with Image.open(source) as img:
        img = img.convert("RGB")
        factor = max(size[0] / img.width, size[1] / img.height)
        if factor > 1:  # too small: enlarged to cover `size`, keeping its aspect
            img = img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS)
        left, top = (img.width - size[0]) // 2, (img.height - size[1]) // 2
        buffer = io.BytesIO()
        img.crop((left, top, left + size[0], top + size[1])).save(buffer, "PNG")
    return buffer.getvalue()
