#!/usr/bin/env bash
# Train the shipped model gan-translate-realworld-x4 (models/zoo/, model card
# docs/model_card_gan-translate-realworld-x4.md) again, in three runs of scripts/realesr_compact.sh's pixel stage
# (Real-ESRNet's losses on Real-ESRGAN's second-order degradation: L1, Adam(2e-4, 0.9, 0.99), EMA 0.999, a
# cosine schedule over EPOCHS epochs each, default 300; 128x128 HR crops in batches of 16):
#   bash scripts/train_gan_translate_realworld_x4.sh [NAME] [extra train.py flags...]
#   1. NAME_a_net: srvgg with 16 body convolutions from scratch, seed 0;
#   2. NAME_b_net: the same network again from run 1's EMA weights (a fresh cosine schedule), seed 1;
#   3. NAME_c_net: run 2's EMA weights deepened to 32 convolutions (scripts/deepen_srvgg.py: identity layers
#      between the trained ones, so it starts from run 2's function), seed 2.
# DATAROOT (default ../shared/data/sr_train, T91 + BSD200) and CHECKPOINTS_DIR (./checkpoints) come from the
# environment. A SIGTERM saves the latest weights of the run it stops. Then ship run 3's EMA weights in fp16:
#   python -c "import torch; sd = torch.load('checkpoints/NAME_c_net/latest_net_G_ema.pth', weights_only=True); \
#              torch.save({k: v.half() for k, v in sd.items()}, 'models/zoo/gan-translate-realworld-x4.pth')"
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-gan-translate-realworld-x4}; shift $(( $# >= 1 ? 1 : 0 ))
py=${PYTHON:-python}
dataroot=${DATAROOT:-../shared/data/sr_train}
checkpoints=${CHECKPOINTS_DIR:-./checkpoints}
export STAGES=1 NET_EPOCHS=${EPOCHS:-300} CHECKPOINTS_DIR=$checkpoints PYTHON=$py
common=(--gpu_ids -1 --num_threads 1 --print_freq 1136 --save_epoch_freq 25)
bash scripts/realesr_compact.sh "$dataroot" "${name}_a" "${common[@]}" --seed 0 "$@"
bash scripts/realesr_compact.sh "$dataroot" "${name}_b" "${common[@]}" --seed 1 \
    --pretrained_G "$checkpoints/${name}_a_net" "$@"
"$py" scripts/deepen_srvgg.py "$checkpoints/${name}_b_net" "$checkpoints/${name}_b_net/deepened_n_conv32.pth" --n_conv 32
bash scripts/realesr_compact.sh "$dataroot" "${name}_c" "${common[@]}" --seed 2 --n_conv 32 \
    --pretrained_G "$checkpoints/${name}_b_net/deepened_n_conv32.pth" "$@"
