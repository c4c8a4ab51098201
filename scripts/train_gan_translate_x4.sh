#!/usr/bin/env bash
# Train the shipped model gan-translate-x4 (models/zoo/, model card docs/model_card_gan-translate-x4.md) again:
#   bash scripts/train_gan_translate_x4.sh [NAME] [extra train.py flags...]
# BasicSR's MSRResNet layout (64 features, 8 residual blocks, bilinear input skip), bicubic x4, trained by
# --model srgan in its pixel stage only, with the L1 pixel loss, Adam 5e-4 on a cosine schedule over
# EPOCHS epochs (default 5, what fitted the first run's 46 minutes on a shared 2-core CPU), 96x96 HR crops in
# batches of 16 from ../shared/data/sr_train (T91 + BSD200), validated on Set5 after every epoch; then a second
# stage, NAME-ft: the same loss from stage 1's weights (--pretrained_G checkpoints/NAME), Adam 2e-4 on a cosine
# schedule over EPOCHS2 epochs (default 40), seed 1. A SIGTERM saves the latest weights of the stage it stops.
# Then ship stage 2's weights in fp16:
#   python -c "import torch; sd = torch.load('checkpoints/NAME-ft/latest_net_G.pth', weights_only=True); \
#              torch.save({k: v.half() for k, v in sd.items()}, 'models/zoo/gan-translate-x4.pth')"
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-gan-translate-x4}; shift $(( $# >= 1 ? 1 : 0 ))
py=${PYTHON:-python}
"$py" train.py --model srgan --netG msrresnet --ngf 64 --n_blocks 8 --norm none --init_type normal \
    --dataroot ../shared/data/sr_train --name "$name" --gpu_ids -1 --seed 0 \
    --pixel_loss l1 --lr 5e-4 --lr_policy cosine --n_epochs "${EPOCHS:-5}" --n_epochs_decay 0 \
    --pretrain_epochs 100000 --lambda_perceptual 0 --crop_size 96 --batch_size 16 \
    --val_dataroot ../shared/data/sr_eval/Set5 --display_id 0 --num_threads 0 --save_epoch_freq 1 --print_freq 160 "$@"
"$py" train.py --model srgan --netG msrresnet --ngf 64 --n_blocks 8 --norm none --init_type normal \
    --dataroot ../shared/data/sr_train --name "$name-ft" --gpu_ids -1 --seed 1 --pretrained_G "checkpoints/$name" \
    --pixel_loss l1 --lr 2e-4 --lr_policy cosine --n_epochs "${EPOCHS2:-40}" --n_epochs_decay 0 \
    --pretrain_epochs 100000 --lambda_perceptual 0 --crop_size 96 --batch_size 16 \
    --val_dataroot ../shared/data/sr_eval/Set5 --display_id 0 --num_threads 0 --save_epoch_freq 5 --print_freq 288 "$@"
