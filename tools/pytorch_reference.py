# Usage: python3 tools/pytorch_reference.py WIDTH [THREADS]   (needs torch; not part of the build or tests)
"""PyTorch reference for ganlab's dense probe benchmark: the ring-8 MLP game with 2 x width tanh
players, batch 256, f64; the game vector field v = (grad_theta L_G, grad_phi L_D) for the
non-saturating loss, its Jacobian by double-backprop jacrev, and all eigenvalues; then the
symmetric spectra a dense probe adds (printed apart from the total)."""
import sys, time, math
import torch
from torch.func import jacrev, functional_call, grad
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
torch.set_default_dtype(torch.float64)
width = int(sys.argv[1])
torch.manual_seed(0)
def mlp(i, o):
    return torch.nn.Sequential(torch.nn.Linear(i, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, o))
G, D = mlp(2, 2), mlp(2, 1)
n = 256
ang = torch.randint(0, 8, (n,)) * (2 * math.pi / 8)
real = torch.stack([2 * torch.cos(ang), 2 * torch.sin(ang)], 1) + 0.02 * torch.randn(n, 2)
z = torch.randn(n, 2)
gn = [(k, v.shape) for k, v in G.named_parameters()]
dn = [(k, v.shape) for k, v in D.named_parameters()]
ng = sum(s.numel() for _, s in gn)
def unflat(p, names):
    out, at = {}, 0
    for k, s in names:
        out[k] = p[at:at + s.numel()].view(s); at += s.numel()
    return out
sp = torch.nn.functional.softplus
def field(p):
    th, ph = unflat(p[:ng], gn), unflat(p[ng:], dn)
    def lg(th):
        return sp(-functional_call(D, ph, (functional_call(G, th, (z,)),))).mean()
    def ld(ph):
        fake = functional_call(G, th, (z,))
        return sp(-functional_call(D, ph, (real,))).mean() + sp(functional_call(D, ph, (fake,))).mean()
    gth, gph = grad(lg)(th), grad(ld)(ph)
    return torch.cat([gth[k].reshape(-1) for k, _ in gn] + [gph[k].reshape(-1) for k, _ in dn])
p = torch.cat([v.detach().reshape(-1) for v in list(G.parameters()) + list(D.parameters())])
t = time.time(); J = jacrev(field)(p); tj = time.time() - t
t = time.time(); e = torch.linalg.eigvals(J); te = time.time() - t
# The symmetric spectra ganlab's dense probe adds (`symmetric_s` of `ganlab bench --spectrum`):
# both players' Hessian blocks and J's symmetric part, eigenvalues only.
t = time.time()
for S in (J[:ng, :ng], J[ng:, ng:], J):
    torch.linalg.eigvalsh((S + S.T) / 2)
ts = time.time() - t
print(f"width={width} params={p.numel()} threads={torch.get_num_threads()} jacobian_s={tj:.2f} eigvals_s={te:.2f} total_s={tj+te:.2f} symmetric_s={ts:.2f} trace_err={abs(J.trace()-e.sum().real).item():.2e}")
