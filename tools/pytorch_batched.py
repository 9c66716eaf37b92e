# Usage: python3 tools/pytorch_batched.py TRIALS [WIDTH] [BATCH] [STEPS] [THREADS] [DEVICE]
#   defaults: width 32, batch 64, 200 steps, 2 threads, cpu (or cuda)
# (needs torch; not part of the build or tests)
"""PyTorch peer of `ganlab bench --trials TRIALS`: TRIALS seeds of the ring-8 GAN (MLP G and D
with 2 hidden ReLU layers of WIDTH, z of dim 2, non-saturating loss, Adam 1e-4 (0.5, 0.999),
simultaneous updates: both gradients at the same point, then both steps; per-tensor gradient
norms read every step, as ganlab records them), trained
  1. one trial at a time (eager PyTorch, as a researcher's script trains one seed), and
  2. batched: all trials as one model, parameters stacked [TRIALS, in, out], products by
     torch.bmm, one Adam over the stacks (the same arithmetic per trial).
Prints seconds and trials per second of each, after a short warm-up."""
import math
import sys
import time

import torch

trials = int(sys.argv[1])
width = int(sys.argv[2]) if len(sys.argv) > 2 else 32
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 200
torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
dev = torch.device(sys.argv[6] if len(sys.argv) > 6 else "cpu")
sp = torch.nn.functional.softplus


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def init(t, sizes):
    """Stacked [t, in, out] weights and [t, 1, out] biases, PyTorch's Linear init."""
    ps = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(i)
        ps.append(((torch.rand(t, i, o, device=dev) * 2 - 1) * bound).requires_grad_())
        ps.append(((torch.rand(t, 1, o, device=dev) * 2 - 1) * bound).requires_grad_())
    return ps


def mlp(ps, x):
    h = x
    for k in range(0, len(ps), 2):
        h = torch.baddbmm(ps[k + 1], h, ps[k])
        if k + 2 < len(ps):
            h = torch.relu(h)
    return h


def ring(t, n):
    ang = torch.randint(0, 8, (t, n, 1), device=dev) * (2 * math.pi / 8)
    return torch.cat([2 * torch.cos(ang), 2 * torch.sin(ang)], 2) + 0.02 * torch.randn(t, n, 2, device=dev)


class Adam:
    def __init__(s, ps, lr=1e-4, b1=0.5, b2=0.999, eps=1e-8):
        s.ps, s.lr, s.b1, s.b2, s.eps, s.t = ps, lr, b1, b2, eps, 0
        s.m = [torch.zeros_like(p) for p in ps]
        s.v = [torch.zeros_like(p) for p in ps]

    @torch.no_grad()
    def step(s, grads):
        s.t += 1
        for p, g, m, v in zip(s.ps, grads, s.m, s.v):
            m.mul_(s.b1).add_(g, alpha=1 - s.b1)
            v.mul_(s.b2).addcmul_(g, g, value=1 - s.b2)
            denom = (v.sqrt() / math.sqrt(1 - s.b2 ** s.t)).add_(s.eps)
            p.addcdiv_(m, denom, value=-s.lr / (1 - s.b1 ** s.t))


def train(t, n_steps):
    """t trials as one model (t = 1: one trial), n_steps simultaneous steps."""
    g = init(t, [2, width, width, 2])
    d = init(t, [2, width, width, 1])
    og, od = Adam(g), Adam(d)
    for _ in range(n_steps):
        real, z = ring(t, batch), torch.randn(t, batch, 2, device=dev)
        fake = mlp(g, z)
        # L_D with the fake rows as constants; L_G through G. Each trial's loss is its own
        # mean; their sum's gradient is each trial's own.
        ld = (sp(-mlp(d, real)).mean((1, 2)) + sp(mlp(d, fake.detach())).mean((1, 2))).sum()
        lg = sp(-mlp(d, fake)).mean((1, 2)).sum()
        gd = torch.autograd.grad(ld, d)
        gg = torch.autograd.grad(lg, g)
        norms = torch.stack([x.square().sum((1, 2)) for x in gd + gg])
        norms.cpu()  # read every step, as ganlab's records are
        od.step(gd)
        og.step(gg)


torch.manual_seed(0)
train(1, 20)
train(min(trials, 8), 20)  # warm-up
sync()
start = time.time()
for _ in range(trials):
    train(1, steps)
sync()
single = time.time() - start
start = time.time()
train(trials, steps)
sync()
batched = time.time() - start
print(
    f"pytorch {dev.type}: {trials} trials x {steps} steps, MLP 2x{width} batch {batch}: one at a "
    f"time {single:.2f} s ({trials / single:.2f} trials/s, {trials * steps / single:.1f} "
    f"steps/s), batched {batched:.2f} s "
    f"({trials / batched:.2f} trials/s): {single / batched:.2f}x"
)
