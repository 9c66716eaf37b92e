#!/bin/sh
# Issue 17's GPU measurements, ganlab and PyTorch eager alternated ROUNDS times on one GPU:
#   sh tools/gpu_suite.sh GANLAB_BINARY [ROUNDS] [DEVICE]
# GANLAB_BINARY: a ganlab built with --features cuda (or wgpu, with DEVICE=wgpu for ganlab
# and cuda for PyTorch); ROUNDS: 3; DEVICE: cuda. Needs python3 with torch.
# Take medians per line across rounds; the machines are shared and noisy.
set -eu
bin=$1
rounds=${2:-3}
device=${3:-cuda}
here=$(dirname "$0")
torch_device=$device
[ "$device" = wgpu ] && torch_device=cuda
i=1
while [ "$i" -le "$rounds" ]; do
    echo "== round $i"
    "$bin" bench --gpu --backend "$device"
    # The same models in PyTorch: the MLP 2x128 single trial (1 trial, steps/s), the DCGAN
    # 64x64, and the seeds one at a time and batched.
    for batch in 512 4096; do
        python3 "$here/pytorch_batched.py" 1 128 "$batch" 200 2 "$torch_device"
    done
    for batch in 64 256; do
        python3 "$here/pytorch_dcgan.py" non_saturating "$batch" 20 2 "$torch_device" 64
    done
    for trials in 8 64 256; do
        python3 "$here/pytorch_batched.py" "$trials" 32 64 100 2 "$torch_device"
    done
    i=$((i + 1))
done
