#!/usr/bin/env bash
# SRGAN with the settings of Ledig et al. 2017, in the paper's two stages.
#   bash scripts/srgan_paper.sh DATAROOT [NAME] [extra train.py flags...]
# DATAROOT: a folder of HR images (e.g. DIV2K or an ImageNet subset; T91 + BSD200 works for a small run).
# Stage 1, SRResNet: pixel MSE only, Adam(1e-4, 0.9, 0.999), batch 16, 96x96 HR crops, x4.
# Stage 2, SRGAN from the SRResNet: VGG19 phi_5,4 content loss with the features rescaled by 1/12.75
# (--lambda_perceptual 0.006 = 1/12.75^2), 1e-3 vanilla adversarial loss, no pixel term; learning rate 1e-4
# then 1e-5 for as long again (the paper: 1e5 + 1e5 updates after 1e6 SRResNet updates).
# Epoch counts: SRRESNET_EPOCHS and SRGAN_EPOCHS (per learning rate) in the environment; size them to your data
# (updates per epoch = images / 16); CHECKPOINTS_DIR (./checkpoints) is where both stages save. Needs the VGG19
# ImageNet weights: internet once, or --vgg_weights PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
dataroot=$1; name=${2:-srgan_paper}; shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python}
srresnet_epochs=${SRRESNET_EPOCHS:-100}
srgan_epochs=${SRGAN_EPOCHS:-20}
checkpoints=${CHECKPOINTS_DIR:-./checkpoints}
common=(--model srgan --dataroot "$dataroot" --checkpoints_dir "$checkpoints" --scale 4 --netG srresnet --netD srgan --netD_head dense --norm batch
        --crop_size 96 --batch_size 16 --lr 1e-4 --beta1 0.9)
"$py" train.py "${common[@]}" --name "${name}_srresnet" --pretrain_epochs "$srresnet_epochs" \
    --n_epochs "$srresnet_epochs" --n_epochs_decay 0 --lambda_perceptual 0 --lr_policy step \
    --lr_decay_iters 1000000 "$@"
"$py" train.py "${common[@]}" --name "$name" --pretrained_G "$checkpoints/${name}_srresnet/latest_net_G.pth" \
    --pretrain_epochs 0 --lambda_pixel 0 --lambda_perceptual 0.006 --vgg_layer 54 --lambda_adv 1e-3 \
    --gan_mode vanilla --n_epochs $(( 2 * srgan_epochs )) --n_epochs_decay 0 --lr_policy step \
    --lr_decay_iters "$srgan_epochs" "$@"
