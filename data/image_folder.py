"""The reference's import path for listing and reading image files (`from data.image_folder import
make_dataset`). The code, and the table of how each kind of file is read, live in util/images/reading.py,
which SR inference and the models share without importing `data`.
"""
from util.images.reading import IMG_EXTENSIONS, is_image_file, load_image, make_dataset

__all__ = ["IMG_EXTENSIONS", "is_image_file", "load_image", "make_dataset"]
