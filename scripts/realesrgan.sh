#!/usr/bin/env bash
# Real-ESRNet then Real-ESRGAN x4, with the published settings (../shared/reference/realesrgan_recipe.md).
#   bash scripts/realesrgan.sh DATAROOT [NAME] [extra train.py flags...]
# DATAROOT: a folder of clean HR photos (Real-ESRGAN used DIV2K + Flickr2K + OST); each LR is made on the fly by
# the second-order degradation (--degradation realesrgan, every probability and range at its published value).
# Stage 1, NAME_net (Real-ESRNet): RRDBNet (23 blocks, 64 features, growth 32), L1 only, Adam(2e-4, 0.9, 0.99)
# at a constant rate (published: 1,000,000 updates), EMA 0.999, 256x256 HR crops with horizontal flips only
# (--no_rotate), batch 12 per process (published: 4 GPUs, --gpu_ids 0,1,2,3). START_FROM=PATH skips it and
# starts stage 2 from PATH instead: a checkpoint folder, a net_G file or a publisher's file (e.g.
# checkpoints/realesrnet-x4plus from `python scripts/download.py model sr realesrnet-x4plus`).
# Stage 2, NAME (Real-ESRGAN, from stage 1's EMA weights): L1 1 + perceptual 1 (VGG19 conv1_2 0.1, conv2_2 0.1,
# conv3_4 1, conv4_4 1, conv5_4 1 before ReLU, L1 criterion) on unsharp-masked targets + vanilla GAN 0.1 against
# the spectral-norm U-Net discriminator (64 features), one D update per G update, Adam(1e-4, 0.9, 0.99) for both,
# constant (published: 400,000 updates), EMA 0.999.
# Epochs: NET_EPOCHS (default 1000) and GAN_EPOCHS (default 400): size them to your data (updates per epoch =
# images / batch / processes). CHECKPOINTS_DIR (./checkpoints) is where both stages save. Stage 2 needs the
# VGG19 ImageNet weights: internet once, or --vgg_weights PATH.
set -euo pipefail
source "$(dirname "$0")/recipe_settings.sh"
recipe_usage "$@"
cd "$(dirname "$0")/.."
dataroot=$1; name=${2:-realesrgan}; shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python}
checkpoints=${CHECKPOINTS_DIR:-./checkpoints}
common=(--model srgan --dataroot "$dataroot" --checkpoints_dir "$checkpoints" --scale 4 --netG rrdbnet --ngf 64
        --n_blocks 23 --growth_channels 32 --norm none --init_type architecture --crop_size 256 --batch_size 12
        --no_rotate "${REALESRGAN_COMMON[@]}" --lr_policy step --lr_decay_iters 1000000 --display_id 0)
start=${START_FROM:-}
if [ -z "$start" ]; then
    "$py" train.py "${common[@]}" "${REALESRNET_STAGE[@]}" --name "${name}_net" \
        --pretrain_epochs "${NET_EPOCHS:-1000}" --n_epochs "${NET_EPOCHS:-1000}" --n_epochs_decay 0 "$@"
    start=$checkpoints/${name}_net
fi
"$py" train.py "${common[@]}" "${REALESRGAN_STAGE[@]}" --name "$name" --pretrained_G "$start" --ndf 64 \
    --n_epochs "${GAN_EPOCHS:-400}" --n_epochs_decay 0 "$@"
