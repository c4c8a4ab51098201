"""Install the image-translation toolkit (SRGAN, pix2pix, CycleGAN).

The packages keep the reference's top-level names (`models`, `data`, `options`, `util`) so that commands
and imports people know from pytorch-CycleGAN-and-pix2pix keep working.
"""
from setuptools import find_packages, setup

EXTRAS = {
    "tensorboard": ["tensorboard>=2.12,<3"],
    # FID / KID (scripts/eval_fid.py, test.py --fid; util/fid.py says why this library). 0.4.0 is the release
    # tested (tests/util/test_fid.py); an 86 KB pure-Python wheel whose dependencies are all required above.
    "metrics": ["torch-fidelity>=0.4,<0.5"],
    # scripts/upscale_video.py (util/video.py): PyAV, whose wheels carry FFmpeg's libraries (no ffmpeg binary).
    "video": ["av>=14,<19"],
    # --use_wandb (util/reports/wandb_display.py): wandb and its dependencies take about 90 MB.
    "wandb": ["wandb>=0.17,<1"],
    # scripts/export.py --format onnx and --backend onnxruntime (models/inference/export.py, onnx_backend.py): the
    # dynamo exporter writes through onnxscript; bounds from the versions tested (onnx 1.23, onnxruntime 1.32,
    # onnxscript 0.7).
    "onnx": ["onnx>=1.17,<2", "onnxruntime>=1.20,<2", "onnxscript>=0.2,<1"],
    # scripts/export.py --format safetensors (0.8 tested); spandrel opens the exports in the test extra only.
    "safetensors": ["safetensors>=0.4,<1"],
    # scripts/serve.py (scripts/serving/): the app, its server, multipart parsing from memory, metrics. uvicorn
    # 0.30 has --workers' health-check timeout; python-multipart 0.0.18 fixed a form-parsing denial of service.
    "serve": ["fastapi>=0.110,<1", "uvicorn>=0.30,<1", "python-multipart>=0.0.18,<0.1",
              "prometheus-client>=0.20,<1"],
    # scripts/serve_ray.py: the service on Ray Serve (BackpressureConfig, for its 503 + Retry-After, is in 2.60).
    "cluster": ["ray[serve]>=2.60,<3"],
}

# The suite needs every extra above (each one's tests run in CI), plus these. import-linter checks the layers in
# .importlinter (run by scripts/test.sh; 2.1 has "|" independent siblings); httpx: the framework's TestClient and
# the real-server tests; selenium: the upload page's browser test (tests/scripts/test_serve_browser.py, with
# Debian's chromium-driver); spandrel opens the safetensors exports (tests/models/inference/test_export.py).
TEST_ONLY = ["pytest>=7,<10", "scikit-image>=0.21,<1", "import-linter>=2.1,<3", "httpx>=0.27,<1", "selenium>=4.11,<5",
             "spandrel>=0.4,<1"]

setup(
    name="gan-translate",
    version="0.1.0",
    description="SRGAN, pix2pix and CycleGAN in one PyTorch toolkit, compatible with pytorch-CycleGAN-and-pix2pix",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # Sub-packages too (util.reports, ...): a plain list would leave them out of a non-editable install.
    packages=find_packages(include=["models", "models.*", "data", "data.*", "options", "options.*", "util", "util.*"]),
    py_modules=["train", "test"],
    install_requires=[
        "torch>=2.6,<3",  # 2.6 pairs with torchvision 0.21; fused Adam on CPU since 2.4
        "torchvision>=0.21,<1",  # 0.21: decode_png returns 16-bit samples (the tests' independent PNG decoder)
        "numpy>=1.23,<3",
        # 16-bit colour PNGs (read and written exactly; PIL keeps 8 bits of them). 4.10: built for numpy 2.
        "opencv-python-headless>=4.10,<6",
        "pypng>=0.20220715.0,<1",  # 16-bit grey + alpha PNGs, the one kind OpenCV cannot write
        "pillow>=9.1,<13",
        "dominate>=2.6,<3",
        "visdom>=0.2.4,<0.3",
        # visdom's page answers 403 under tornado 6.6 (see README, "Dashboard").
        "tornado>=6.1,<6.6",
        "tqdm>=4.60,<5",
    ],
    extras_require={**EXTRAS, "test": TEST_ONLY + sorted({req for reqs in EXTRAS.values() for req in reqs})},
)
