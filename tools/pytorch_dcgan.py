# Usage: python3 tools/pytorch_dcgan.py LOSS [BATCH] [STEPS] [THREADS] [DEVICE]
#   LOSS: non_saturating | wgan_gp; defaults: batch 64, 200 steps, 2 threads, cpu (or cuda)
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
torch.manual_seed(0)

class G(nn.Module):
    def __init__(s):
        super().__init__()
        s.proj = nn.Linear(100, 128 * 7 * 7)
        s.bn0 = nn.BatchNorm2d(128)
        s.up1 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
        s.bn1 = nn.BatchNorm2d(64)
        s.out = nn.ConvTranspose2d(64, 1, 4, 2, 1)
    def forward(s, z):
        h = F.relu(s.bn0(s.proj(z).view(-1, 128, 7, 7)))
        h = F.relu(s.bn1(s.up1(h)))
        return torch.tanh(s.out(h)).view(z.shape[0], -1)

class D(nn.Module):
    def __init__(s, layer_norm):
        super().__init__()
        s.down0 = nn.Conv2d(1, 64, 4, 2, 1)
        s.down1 = nn.Conv2d(64, 128, 4, 2, 1, bias=False)
        s.norm = nn.GroupNorm(1, 128) if layer_norm else nn.BatchNorm2d(128)
        s.out = nn.Linear(128 * 7 * 7, 1)
    def forward(s, x):
        h = F.leaky_relu(s.down0(x.view(-1, 1, 28, 28)), 0.2)
        h = F.leaky_relu(s.norm(s.down1(h)), 0.2)
        return s.out(h.flatten(1))

g, d = G().to(dev), D(loss == "wgan_gp").to(dev)
opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
data = torch.rand(2048, 784, device=dev) * 2 - 1

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
print(f"pytorch DCGAN 28x28 {loss} batch {batch} f32 {dev.type}: {steps / (time.time() - t):.2f} steps/s")
