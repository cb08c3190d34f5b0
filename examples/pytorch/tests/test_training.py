"""A small training loop: a two-layer model built on SigmoidAttention learns a task that needs
attention (each token's target depends on the whole sequence), on ragged random data."""

from common import DEVICE, sigattn_torch, torch

nn = torch.nn


class Block(nn.Module):
    """Pre-norm transformer layer with sigmoid attention."""

    def __init__(self, width, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = sigattn_torch.SigmoidAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x, lengths):
        x = x + self.attn(self.norm1(x), lengths)
        return x + self.mlp(self.norm2(x))


class TwoLayerModel(nn.Module):
    def __init__(self, features, width, heads):
        super().__init__()
        self.embed = nn.Linear(features, width)
        self.layers = nn.ModuleList([Block(width, heads), Block(width, heads)])
        self.head = nn.Linear(width, 1)

    def forward(self, x, lengths):
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, lengths)
        return self.head(h).squeeze(-1)


def make_batch(gen, batch, seq, features):
    """x [B, S, F] ~ N(0, 1) with lengths in [S/2, S]; target y[b, i] = x[b, i, 1] plus the sum of
    x[b, j, 0] over the real tokens j of the sequence, divided by sqrt(len) (variance 2)."""
    lengths = torch.randint(seq // 2, seq + 1, (batch,), generator=gen, device=DEVICE)
    x = torch.randn(batch, seq, features, generator=gen, device=DEVICE)
    real = torch.arange(seq, device=DEVICE)[None, :] < lengths[:, None]
    x = x * real[:, :, None]
    pooled = x[:, :, 0].sum(1) / lengths.float().sqrt()
    y = x[:, :, 1] + pooled[:, None]
    return x, lengths.to(torch.int32), y, real


def test_training_loop_loss_decreases():
    torch.manual_seed(0)
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    batch, seq, features, width, heads = 8, 96, 16, 128, 2  # head_dim 64
    model = TwoLayerModel(features, width, heads).to(DEVICE)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        x, lengths, y, real = make_batch(gen, batch, seq, features)
        pred = model(x, lengths)
        loss = ((pred - y) ** 2 * real).sum() / real.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(l == l and l < 1e6 for l in losses), "loss became NaN or diverged"
    first = sum(losses[:20]) / 20
    last = sum(losses[-20:]) / 20
    # The token's own feature alone explains half the target's variance; going well below that
    # needs the attention's pooling over the sequence.
    assert last < 0.25 * first, f"loss {first:.3f} -> {last:.3f}"
    assert last < 0.5, f"loss {first:.3f} -> {last:.3f}"
