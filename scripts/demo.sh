#!/usr/bin/env bash
# The main job on embedded demo data: make procedural high-resolution "photos", train a small SRGAN x4 on CPU
# (or GPU 0 when there is one): SRResNet-stage epochs with the pixel loss, then a few adversarial epochs; then run
# test.py with PSNR/SSIM against bicubic upscaling, measure the border strip, and print where the HTML page is.
# The generator is BasicSR's MSRResNet (32 features, 4 blocks): it adds its output to the bilinearly upscaled
# input, so it starts at interpolation quality and beats bicubic within the demo's minute of training
# (docs/sr_results.md: the recipe was chosen by measurement). --init_type normal: the published initialisation
# (every convolution x0.1) leaves the residual near zero for the demo's few hundred steps. --edge_pad 8: the
# image borders are extended by their edge pixels before upscaling, so no zero-padding frame appears there.
# The demo uses the pixel loss as content loss (--lambda_perceptual 0) so that it needs no VGG19 download.
# DEMO_DATA, DEMO_CHECKPOINTS and DEMO_RESULTS move its folders (tests run it in a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${DEMO_SKIP_BOOTSTRAP:-}" ] || bash scripts/bootstrap.sh
py=.venv/bin/python
data=${DEMO_DATA:-datasets/demo_sr}
checkpoints=${DEMO_CHECKPOINTS:-./checkpoints}
results=${DEMO_RESULTS:-./results}
[ -d "$data/train" ] || "$py" scripts/make_demo_data.py --out "$data" --layout single --n_train 96 --n_test 6
common=(--model srgan --name demo_srgan --scale 4 --netG msrresnet --ngf 32 --n_blocks 4 --norm none --edge_pad 8
        --checkpoints_dir "$checkpoints")
"$py" train.py "${common[@]}" --dataroot "$data/train" --val_dataroot "$data/test" --ndf 32 --netD_head conv \
    --init_type normal --crop_size 64 --batch_size 8 --pretrain_epochs 14 --n_epochs 16 --n_epochs_decay 0 \
    --lr 1e-3 --lambda_pixel 1 --lambda_perceptual 0 --lambda_adv 1e-3 \
    --display_id 0 --print_freq 96 --display_freq 96 --save_epoch_freq 8 --num_threads 0 --seed 0
"$py" test.py "${common[@]}" --dataroot "$data/test" --results_dir "$results" --eval_metrics
"$py" scripts/sr_border.py "$results/demo_srgan/test_latest" --strip 16
echo "demo done: $results/demo_srgan/test_latest/index.html (training page: $checkpoints/demo_srgan/web/index.html)"
