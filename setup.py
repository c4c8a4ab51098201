"""Install the image-translation toolkit (SRGAN, pix2pix, CycleGAN).

The packages keep the reference's top-level names (`models`, `data`, `options`, `util`) so that commands
and imports people know from pytorch-CycleGAN-and-pix2pix keep working.
"""
from setuptools import setup

setup(
    name="gan-translate",
    version="0.1.0",
    description="SRGAN, pix2pix and CycleGAN in one PyTorch toolkit, compatible with pytorch-CycleGAN-and-pix2pix",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["models", "data", "options", "util"],
    py_modules=["train", "test"],
    install_requires=[
        "torch>=2.6,<3",  # 2.6 pairs with torchvision 0.21; fused Adam on CPU since 2.4
        "torchvision>=0.21,<1",  # 0.21: decode_png returns 16-bit samples
        "numpy>=1.23,<3",
        "pillow>=9.1,<13",
        "dominate>=2.6,<3",
        "visdom>=0.2.4,<0.3",
        # visdom's page answers 403 under tornado 6.6 (see README, "Dashboard").
        "tornado>=6.1,<6.6",
        "tqdm>=4.60,<5",
    ],
    extras_require={
        "tensorboard": ["tensorboard>=2.12,<3"],
        "test": ["pytest>=7,<10", "scikit-image>=0.21,<1", "tensorboard>=2.12,<3"],
    },
)
