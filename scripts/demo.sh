#!/usr/bin/env bash
# The main job on embedded demo data: make procedural label->photo pairs, train a small pix2pix for a few
# epochs on CPU (or GPU 0 when there is one), then run test.py and print where its HTML page is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
py=.venv/bin/python
data=datasets/demo_shapes
[ -d "$data/train" ] || "$py" scripts/make_demo_data.py --out "$data"
common=(--dataroot "$data" --name demo_pix2pix --model pix2pix --netG unet_128 --ngf 32 --ndf 32
        --load_size 143 --crop_size 128)
"$py" train.py "${common[@]}" --n_epochs 10 --n_epochs_decay 5 --display_id 0 --print_freq 24 --display_freq 24 \
    --save_epoch_freq 5 --num_threads 2
"$py" test.py "${common[@]}" --load_size 128
echo "demo done: results/demo_pix2pix/test_latest/index.html (training page: checkpoints/demo_pix2pix/web/index.html)"
