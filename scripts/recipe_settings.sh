# Sourced by the SR recipe scripts: their usage check and Real-ESRGAN's published settings, written once
# (../shared/reference/realesrgan_recipe.md).

# recipe_usage "$@": without a DATAROOT, print the calling script's header (its comment lines after the first
# line, up to the first line of code) and exit 2.
recipe_usage() {
    if [ $# -lt 1 ]; then
        sed -n '2,/^[^#]/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
        exit 2
    fi
}

# Both stages: Adam(0.9, 0.99), EMA 0.999 of G, L1 pixel loss, LRs from the second-order degradation, the
# spectral-norm U-Net discriminator (built in the pixel stage too, which never runs it; the default --netD
# srgan's dense head would cost 134 M parameters at 256x256 crops).
REALESRGAN_COMMON=(--beta1 0.9 --beta2 0.99 --ema_decay 0.999 --pixel_loss l1 --degradation realesrgan --netD unet_sn)
# Real-ESRNet: L1 only (the pixel stage), at 2e-4.
REALESRNET_STAGE=(--lambda_perceptual 0 --lr 2e-4)
# Real-ESRGAN, from Real-ESRNet: L1 1 + perceptual 1 (VGG19 before ReLU, L1, five layers) on unsharp-masked
# targets + vanilla GAN 0.1 against the spectral-norm U-Net discriminator, G and D at 1e-4.
REALESRGAN_STAGE=(--pretrain_epochs 0 --gan_mode vanilla --lambda_adv 0.1 --lambda_pixel 1
                  --lambda_perceptual 1 --perceptual_layers conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1
                  --perceptual_criterion l1 --vgg_before_activation --usm_targets both --lr 1e-4)
