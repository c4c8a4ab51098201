#!/usr/bin/env bash
# ESRGAN x4 (Wang et al. 2018) in its two stages, on bicubic pairs.
#   bash scripts/esrgan.sh DATAROOT [NAME] [extra train.py flags...]
# DATAROOT: a folder of HR images (ESRGAN used DIV2K + Flickr2K); LRs are bicubic downscales.
# Stage 1, NAME_psnr (the PSNR-oriented RRDBNet): 23 blocks, 64 features, growth 32, L1 only,
# Adam(2e-4, 0.9, 0.99) halved after 1/4, 1/2 and 3/4 of PSNR_EPOCHS (BasicSR: 1,000,000 updates), 128x128 HR
# crops, batch 16.
# Stage 2, NAME (ESRGAN, from stage 1): perceptual 1 (VGG19 conv5_4 before ReLU, L1 criterion) + relativistic
# average GAN 5e-3 (--gan_mode ragan, for D and G) + L1 1e-2, against the VGG-style discriminator (--netD srgan,
# 64 features, dense head); Adam(1e-4, 0.9, 0.99) for G and D, halved after 1/8, 1/4, 1/2 and 3/4 of GAN_EPOCHS
# (BasicSR: 400,000 updates).
# Epochs: PSNR_EPOCHS (default 1000) and GAN_EPOCHS (default 400): size them to your data (updates per epoch =
# images / 16). CHECKPOINTS_DIR (./checkpoints) is where both stages save. Stage 2 needs the VGG19 ImageNet
# weights: internet once, or --vgg_weights PATH.
set -euo pipefail
source "$(dirname "$0")/recipe_settings.sh"
recipe_usage "$@"
cd "$(dirname "$0")/.."
dataroot=$1; name=${2:-esrgan}; shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python}
checkpoints=${CHECKPOINTS_DIR:-./checkpoints}
psnr_epochs=${PSNR_EPOCHS:-1000}
gan_epochs=${GAN_EPOCHS:-400}

# The halving schedule: EPOCHS times each fraction NUM/DEN, the distinct positive epochs only (a run too short
# for a milestone keeps its rate).
schedule() {
    local epochs=$1 list="" prev=0 value fraction; shift
    for fraction in "$@"; do
        value=$(( epochs * ${fraction%/*} / ${fraction#*/} ))
        if (( value > prev )); then list+="${list:+,}$value"; prev=$value; fi
    done
    if [ -n "$list" ]; then
        echo "--lr_policy multistep --lr_gamma 0.5 --lr_milestones $list"
    else
        echo "--lr_policy step --lr_decay_iters 1000000"
    fi
}
common=(--model srgan --dataroot "$dataroot" --checkpoints_dir "$checkpoints" --scale 4 --netG rrdbnet --ngf 64
        --n_blocks 23 --growth_channels 32 --norm none --init_type architecture --crop_size 128 --batch_size 16
        --beta1 0.9 --beta2 0.99 --pixel_loss l1 --display_id 0)
# shellcheck disable=SC2046  # the schedule is several words on purpose
"$py" train.py "${common[@]}" --name "${name}_psnr" --pretrain_epochs "$psnr_epochs" --n_epochs "$psnr_epochs" \
    --n_epochs_decay 0 --lambda_perceptual 0 --lr 2e-4 $(schedule "$psnr_epochs" 1/4 1/2 3/4) "$@"
# shellcheck disable=SC2046
"$py" train.py "${common[@]}" --name "$name" --pretrained_G "$checkpoints/${name}_psnr" --pretrain_epochs 0 \
    --netD srgan --netD_head dense --ndf 64 --gan_mode ragan --lambda_adv 5e-3 --lambda_pixel 1e-2 \
    --lambda_perceptual 1 --perceptual_layers conv5_4:1 --perceptual_criterion l1 --vgg_before_activation \
    --lr 1e-4 --n_epochs "$gan_epochs" --n_epochs_decay 0 $(schedule "$gan_epochs" 1/8 1/4 1/2 3/4) "$@"
