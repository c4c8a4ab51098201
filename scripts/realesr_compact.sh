#!/usr/bin/env bash
# A compact real-world x4 model (Real-ESRGAN's SRVGGNetCompact) that trains on a CPU, in Real-ESRGAN's two stages.
#   bash scripts/realesr_compact.sh DATAROOT [NAME] [extra train.py flags...]
# DATAROOT: a folder of clean HR photos (e.g. ../shared/data/sr_train, or DIV2K); each LR is made on the fly by
# Real-ESRGAN's second-order degradation (--degradation realesrgan: blur, resize, noise, JPEG, twice).
# Stage 1, NAME_net (Real-ESRNet's losses): L1 only, Adam(2e-4, 0.9, 0.99), EMA 0.999, cosine schedule (a
# short CPU run ends annealed; Real-ESRNet keeps 2e-4 for 1M updates). srvgg with 64 features and 16 body
# convolutions (realesr-animevideov3's size), 128x128 HR crops in batches of 16.
# Stage 2, NAME (Real-ESRGAN's losses, from stage 1's EMA weights): L1 1 + perceptual 1 (VGG19 conv1_2 0.1,
# conv2_2 0.1, conv3_4 1, conv4_4 1, conv5_4 1 before ReLU, L1) on unsharp-masked targets + vanilla GAN 0.1
# against the spectral-norm U-Net discriminator (--ndf 32), Adam(1e-4, 0.9, 0.99) for G and D, EMA 0.999.
# Epochs: NET_EPOCHS (default 150) and GAN_EPOCHS (default 50) in the environment; STAGES=1 stops after stage 1.
# CHECKPOINTS_DIR (./checkpoints) is where both stages save. Stage 2 needs the VGG19 ImageNet weights: internet
# once, or --vgg_weights PATH. A SIGTERM saves the latest weights of the stage it stops.
set -euo pipefail
source "$(dirname "$0")/recipe_settings.sh"
recipe_usage "$@"
cd "$(dirname "$0")/.."
dataroot=$1; name=${2:-realesr_compact}; shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python}
checkpoints=${CHECKPOINTS_DIR:-./checkpoints}
net_epochs=${NET_EPOCHS:-150}
gan_epochs=${GAN_EPOCHS:-50}
common=(--model srgan --dataroot "$dataroot" --checkpoints_dir "$checkpoints" --scale 4 --netG srvgg --ngf 64
        --n_conv 16 --norm none --init_type architecture --crop_size 128 --batch_size 16 "${REALESRGAN_COMMON[@]}"
        --display_id 0)
"$py" train.py "${common[@]}" "${REALESRNET_STAGE[@]}" --name "${name}_net" --pretrain_epochs "$net_epochs" \
    --n_epochs "$net_epochs" --n_epochs_decay 0 --lr_policy cosine "$@"
[ "${STAGES:-2}" = 1 ] && exit 0
"$py" train.py "${common[@]}" "${REALESRGAN_STAGE[@]}" --name "$name" --pretrained_G "$checkpoints/${name}_net" \
    --ndf 32 --n_epochs "$gan_epochs" --n_epochs_decay 0 --lr_policy step --lr_decay_iters 1000000 "$@"
