#!/usr/bin/env bash
# The main job on embedded demo data: make procedural high-resolution "photos", train a small SRGAN x4 on CPU
# (or GPU 0 when there is one): a few SRResNet epochs with the pixel loss, then adversarial epochs; then run
# test.py with PSNR/SSIM against bicubic upscaling and print where its HTML page is.
# The demo uses the pixel loss as content loss (--lambda_perceptual 0) so that it needs no VGG19 download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
py=.venv/bin/python
data=datasets/demo_sr
[ -d "$data/train" ] || "$py" scripts/make_demo_data.py --out "$data" --layout single --n_train 96 --n_test 6
common=(--model srgan --name demo_srgan --scale 4 --ngf 32 --n_blocks 4 --norm none)
"$py" train.py "${common[@]}" --dataroot "$data/train" --val_dataroot "$data/test" --ndf 32 --netD_head conv \
    --crop_size 64 --batch_size 8 --pretrain_epochs 16 --n_epochs 20 --n_epochs_decay 0 --lr 5e-4 \
    --lambda_pixel 1 --lambda_perceptual 0 --lambda_adv 1e-3 \
    --display_id 0 --print_freq 96 --display_freq 96 --save_epoch_freq 10 --num_threads 2 --seed 0
"$py" test.py "${common[@]}" --dataroot "$data/test" --eval_metrics
echo "demo done: results/demo_srgan/test_latest/index.html (training page: checkpoints/demo_srgan/web/index.html)"
