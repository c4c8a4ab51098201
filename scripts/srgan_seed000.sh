#!/usr/bin/env bash
# SRGAN with seed 000's customised recipe, which trains more stably than the paper's on small datasets.
#   bash scripts/srgan_seed000.sh DATAROOT [NAME] [extra train.py flags...]
# Stage 1, SRResNet: pixel MSE only (PRETRAIN_EPOCHS epochs).
# Stage 2, adversarial, in the same run: content = 0.8 MSE + 0.006 VGG19 phi_5,4 feature MSE; 1e-3 LSGAN
# adversarial loss; Gaussian noise on the discriminator's inputs, std 0.05 decaying by 0.9 per epoch; one-sided
# label smoothing (real target 0.9); Adam(1e-4, 0.9, 0.999); learning rate x0.1 every DECAY_EPOCHS epochs.
# Epoch counts in the environment: PRETRAIN_EPOCHS, GAN_EPOCHS, DECAY_EPOCHS. Needs the VGG19 ImageNet
# weights: internet once, or --vgg_weights PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
dataroot=$1; name=${2:-srgan_seed000}; shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python}
pretrain=${PRETRAIN_EPOCHS:-100}
gan=${GAN_EPOCHS:-40}
decay=${DECAY_EPOCHS:-$(( pretrain + gan / 2 ))}
"$py" train.py --model srgan --dataroot "$dataroot" --name "$name" --scale 4 --netG srresnet --netD srgan \
    --netD_head conv --norm batch --crop_size 96 --batch_size 16 \
    --pretrain_epochs "$pretrain" --n_epochs $(( pretrain + gan )) --n_epochs_decay 0 \
    --lambda_pixel 0.8 --lambda_perceptual 0.006 --vgg_layer 54 --lambda_adv 1e-3 --gan_mode lsgan \
    --d_noise_std 0.05 --d_noise_decay 0.9 --real_label 0.9 \
    --lr 1e-4 --beta1 0.9 --lr_policy step --lr_decay_iters "$decay" "$@"
