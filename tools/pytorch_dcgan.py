# Usage: python3 tools/pytorch_dcgan.py LOSS [BATCH] [STEPS] [THREADS] [DEVICE] [SIZE]
#   LOSS: non_saturating | wgan_gp; defaults: batch 64, 200 steps, 2 threads, cpu (or cuda),
#   28 x 28 images (64 for the GPU suite)
# (needs torch; not part of the build or tests)
"""PyTorch peer of `ganlab bench --dcgan LOSS`: the same DCGAN on 28 x 28 grey images (z of
dim 100, width 64: G = linear to 128x7x7, BN, ReLU, ConvT 128->64 (no bias), BN, ReLU,
ConvT 64->1, tanh; D = conv 1->64, leaky 0.2, conv 64->128 (no bias), BN (layer norm =
GroupNorm(1, 128) for WGAN-GP), leaky, linear), Adam (2e-4, 0.5, 0.999), simultaneous
updates (both gradients at the same point, then both steps), per-tensor gradient norms every
step as ganlab records them. Prints steps per second after 20 warm-up steps."""
import sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

loss = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 200
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
dev = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
size = int(sys.argv[6]) if len(sys.argv) > 6 else 28
WIDTH = 64
torch.manual_seed(0)

# The image side halves while it stays even and at least 4: the base side b (7 for 28, 4 for
# 32 and 64) and the number of stride-2 layers; channels double from WIDTH per layer inward,
# as ganlab's src/nets/dcgan.rs builds them.
base, levels = size, 0
while base % 2 == 0 and base // 2 >= 4:
    base //= 2
    levels += 1
chans = [WIDTH * 2 ** k for k in range(levels)][::-1]  # G: c0 ... WIDTH

class G(nn.Module):
    def __init__(s):
        super().__init__()
        s.proj = nn.Linear(100, chans[0] * base * base)
        s.bn0 = nn.BatchNorm2d(chans[0])
        s.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in zip(chans, chans[1:]))
        s.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in chans[1:])
        s.out = nn.ConvTranspose2d(chans[-1], 1, 4, 2, 1)
    def forward(s, z):
        h = F.relu(s.bn0(s.proj(z).view(-1, chans[0], base, base)))
        for up, bn in zip(s.ups, s.bns):
            h = F.relu(bn(up(h)))
        return torch.tanh(s.out(h)).view(z.shape[0], -1)

class D(nn.Module):
    def __init__(s, layer_norm):
        super().__init__()
        dch = chans[::-1]  # WIDTH ... c0
        s.down0 = nn.Conv2d(1, dch[0], 4, 2, 1)
        s.downs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1, bias=False) for a, b in zip(dch, dch[1:]))
        s.norms = nn.ModuleList((nn.GroupNorm(1, b) if layer_norm else nn.BatchNorm2d(b)) for b in dch[1:])
        s.out = nn.Linear(dch[-1] * base * base, 1)
    def forward(s, x):
        h = F.leaky_relu(s.down0(x.view(-1, 1, size, size)), 0.2)
        for down, norm in zip(s.downs, s.norms):
            h = F.leaky_relu(norm(down(h)), 0.2)
        return s.out(h.flatten(1))

g, d = G().to(dev), D(loss == "wgan_gp").to(dev)
opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
data = torch.rand(2048, size * size, device=dev) * 2 - 1

def step():
    real = data[torch.randint(0, 2048, (batch,), device=dev)]
    z = torch.randn(batch, 100, device=dev)
    fake = g(z)
    if loss == "wgan_gp":
        ld = d(fake.detach()).mean() - d(real).mean()
        eps = torch.rand(batch, 1, device=dev)
        xh = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        gr, = torch.autograd.grad(d(xh).sum(), xh, create_graph=True)
        ld = ld + 10 * ((gr.norm(dim=1) - 1) ** 2).mean()
        lg = -d(fake).mean()
    else:
        ld = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        lg = F.softplus(-d(fake)).mean()
    opt_d.zero_grad(); opt_g.zero_grad()
    gd = torch.autograd.grad(ld, list(d.parameters()))
    gg = torch.autograd.grad(lg, list(g.parameters()))
    for p, q in zip(d.parameters(), gd): p.grad = q
    for p, q in zip(g.parameters(), gg): p.grad = q
    norms = torch.stack([q.norm() for q in gd + gg]).cpu()  # recorded every step
    opt_d.step(); opt_g.step()
    return norms

for _ in range(20):
    step()
if dev.type == "cuda":
    torch.cuda.synchronize()
t = time.time()
for _ in range(steps):
    step()
if dev.type == "cuda":
    torch.cuda.synchronize()
print(f"pytorch DCGAN {size}x{size} {loss} batch {batch} f32 {dev.type}: {steps / (time.time() - t):.2f} steps/s")
