"""Noise elimination in genotype matrices with a pointer network.

Sadeqi Azer, E. et al. (2020). Tumor phylogeny topology inference via deep learning. iScience
23, 101655 (noise elimination: recover the noise-free matrix :math:`A` from the observed
:math:`A'`).  Vinyals, O., Fortunato, M. and Jaitly, N. (2015). Pointer networks. NeurIPS.

The network reads the :math:`nm` entries of :math:`A'` as a sequence of tokens and outputs a
sequence of *pointers* to the entries to flip, ended by a stop token.  Token :math:`(i, j)`
carries :math:`A'_{ij}`, the row :math:`A'_{i\\cdot}`, the column :math:`A'_{\\cdot j}`, one-hot
positions of :math:`i` and :math:`j`, the row and column sums and the number of columns in
three-gametes conflict with column :math:`j`.

*Encoder*: a bidirectional LSTM over the tokens gives :math:`e_1, \\dots, e_{nm}`, plus a learned
stop vector :math:`e_0`.  *Decoder*: an LSTM whose input at step :math:`t` is the encoding of the
entry chosen at step :math:`t-1`; it points with additive attention,

.. math:: u^t_k = v^\\top \\tanh(W_1 e_k + W_2 d_t), \\qquad
          p(\\pi_t = k \\mid \\pi_{<t}, A') = \\operatorname{softmax}_k(u^t_k),

entries already chosen being masked out.  Training maximises the likelihood of the simulator's
flipped entries (in row-major order, then the stop token) with teacher forcing; prediction is
greedy.  The paper trains with reinforcement learning instead; supervised training on
simulated noise is what is implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..tumour.phylogeny import batch_is_perfect_phylogeny, min_flip_correction
from ..tumour.simulate import add_noise, genotype_matrix

__all__ = [
    "entry_tokens",
    "flip_targets",
    "PointerNetwork",
    "NoiseEliminationResult",
    "simulate_noise_elimination_data",
    "train_noise_elimination",
    "correction_reward",
    "reinforce",
]


def entry_tokens(observed: np.ndarray) -> np.ndarray:
    """Token features of every entry of a stack of (B, n, m) matrices: (B, n*m, 4 + 2(n+m))."""
    a = np.asarray(observed, dtype=np.float32)
    b, n, m = a.shape
    ai = a.astype(np.int32)
    c11 = np.einsum("bip,biq->bpq", ai, ai)
    c = ai.sum(axis=1)
    conflict = (c11 > 0) & (c[:, :, None] - c11 > 0) & (c[:, None, :] - c11 > 0)
    col_conf = conflict.sum(axis=2) / m  # (B, m)
    rows = np.repeat(a[:, :, None, :], m, axis=2)  # (B, n, m, m)
    cols = np.repeat(a.transpose(0, 2, 1)[:, None, :, :], n, axis=1)  # (B, n, m, n)
    eye_n = np.broadcast_to(np.eye(n, dtype=np.float32)[None, :, None, :], (b, n, m, n))
    eye_m = np.broadcast_to(np.eye(m, dtype=np.float32)[None, None, :, :], (b, n, m, m))
    rs = np.broadcast_to((a.sum(axis=2) / m)[:, :, None, None], (b, n, m, 1))
    cs = np.broadcast_to((a.sum(axis=1) / n)[:, None, :, None], (b, n, m, 1))
    cc = np.broadcast_to(col_conf[:, None, :, None], (b, n, m, 1)).astype(np.float32)
    tok = np.concatenate([a[..., None], rows, cols, eye_n, eye_m, rs, cs, cc], axis=3)
    return tok.reshape(b, n * m, -1)


def flip_targets(observed: np.ndarray, truth: np.ndarray, max_len: int) -> np.ndarray:
    """Pointer targets: flipped entries (1-based row-major index), then 0 (stop), padded with -1.

    Matrices with more than ``max_len - 1`` flips are truncated.
    """
    b = observed.shape[0]
    out = np.full((b, max_len), -1, dtype=np.int64)
    diff = (np.asarray(observed) != np.asarray(truth)).reshape(b, -1)
    for s in range(b):
        idx = np.flatnonzero(diff[s])[: max_len - 1] + 1
        out[s, : len(idx)] = idx
        out[s, len(idx)] = 0
    return out


class PointerNetwork(nn.Module):
    """Bidirectional LSTM encoder, LSTM decoder, additive-attention pointer over entries + stop."""

    def __init__(self, n_features: int, n_hidden: int = 64):
        super().__init__()
        self.embed = nn.Linear(n_features, n_hidden)
        self.encoder = nn.LSTM(n_hidden, n_hidden, batch_first=True, bidirectional=True)
        self.enc_proj = nn.Linear(2 * n_hidden, n_hidden)
        self.stop = nn.Parameter(torch.zeros(n_hidden))
        self.start = nn.Parameter(torch.zeros(n_hidden))
        self.decoder = nn.LSTMCell(n_hidden, n_hidden)
        self.w1 = nn.Linear(n_hidden, n_hidden, bias=False)
        self.w2 = nn.Linear(n_hidden, n_hidden, bias=False)
        self.v = nn.Linear(n_hidden, 1, bias=False)

    def encode(self, tokens):
        h, _ = self.encoder(torch.relu(self.embed(tokens)))
        e = self.enc_proj(h)
        stop = self.stop.expand(e.shape[0], 1, -1)
        return torch.cat([stop, e], dim=1)  # position 0 is the stop token

    def _scores(self, e, w1e, d, mask):
        u = self.v(torch.tanh(w1e + self.w2(d)[:, None, :])).squeeze(2)
        return u.masked_fill(mask, -1e9)

    def forward(self, tokens, targets):
        """Teacher-forced log-likelihood loss (mean over the non-padded steps)."""
        e = self.encode(tokens)
        w1e = self.w1(e)
        b, steps = targets.shape
        hx = torch.zeros(b, e.shape[2])
        cx = torch.zeros_like(hx)
        inp = self.start.expand(b, -1)
        mask = torch.zeros(b, e.shape[1], dtype=torch.bool)
        losses = []
        for t in range(steps):
            hx, cx = self.decoder(inp, (hx, cx))
            scores = self._scores(e, w1e, hx, mask)
            tgt = targets[:, t]
            valid = tgt >= 0
            if not valid.any():
                break
            losses.append(F.cross_entropy(scores[valid], tgt[valid], reduction="sum"))
            chosen = tgt.clamp(min=0)
            inp = e[torch.arange(b), chosen]
            mask = mask.clone()
            mask[torch.arange(b)[valid], chosen[valid]] = True
            mask[:, 0] = False
        n_valid = (targets >= 0).sum()
        return torch.stack(losses).sum() / n_valid

    def rollout(
        self, tokens, max_len: int, sample: bool = False, generator: torch.Generator | None = None
    ):
        """Decode greedily (``sample=False``) or by sampling from the pointer distribution.

        Returns the list of 0-based entry indices to flip for each matrix and the (B,) summed
        log-probabilities of the decoded sequences (differentiable, for policy gradients).
        """
        e = self.encode(tokens)
        w1e = self.w1(e)
        b = e.shape[0]
        hx = torch.zeros(b, e.shape[2])
        cx = torch.zeros_like(hx)
        inp = self.start.expand(b, -1)
        mask = torch.zeros(b, e.shape[1], dtype=torch.bool)
        done = torch.zeros(b, dtype=torch.bool)
        logp = torch.zeros(b)
        out = [[] for _ in range(b)]
        for _ in range(max_len):
            hx, cx = self.decoder(inp, (hx, cx))
            lp = F.log_softmax(self._scores(e, w1e, hx, mask), dim=1)
            if sample:
                k = torch.multinomial(lp.detach().exp(), 1, generator=generator).squeeze(1)
            else:
                k = lp.argmax(1)
            logp = logp + torch.where(done, torch.zeros(b), lp[torch.arange(b), k])
            for s in torch.nonzero(~done & (k > 0)).flatten().tolist():
                out[s].append(int(k[s]) - 1)
            done = done | (k == 0)
            if done.all():
                break
            mask = mask.clone()
            mask[torch.arange(b), k] = True
            mask[:, 0] = False
            inp = e[torch.arange(b), k]
        return out, logp

    @torch.no_grad()
    def decode(self, tokens, max_len: int) -> list:
        """Greedy decoding: for each matrix the list of 0-based entry indices to flip."""
        return self.rollout(tokens, max_len)[0]


def correction_reward(
    observed: np.ndarray, flips: list, fp_rate: float, fn_rate: float, penalty: float = 10.0
) -> np.ndarray:
    """Log-likelihood ratio of the corrected matrix, with a penalty if it is not conflict-free.

    For a correction :math:`B` of :math:`A'`,
    :math:`r = \\log P(A' \\mid B) - \\log P(A' \\mid A')
    = -\\sum_{\\text{1}\\to 0} \\log\\frac{1-\\beta}{\\alpha} - \\sum_{0\\to 1} \\log\\frac{1-\\alpha}{\\beta}`,
    minus ``penalty`` when :math:`B` fails the three-gametes test.  Maximising it is looking for
    the most likely matrix with a perfect phylogeny.
    """
    b = observed.shape[0]
    flat = observed.reshape(b, -1)
    cost1 = np.log((1 - fn_rate) / fp_rate)
    cost0 = np.log((1 - fp_rate) / fn_rate)
    corrected = flat.copy()
    reward = np.zeros(b)
    for s, f in enumerate(flips):
        vals = flat[s, f]
        reward[s] = -(cost1 * (vals == 1).sum() + cost0 * (vals == 0).sum())
        corrected[s, f] = 1 - corrected[s, f]
    ok = batch_is_perfect_phylogeny(corrected.reshape(observed.shape))
    return reward - penalty * (~ok)


def reinforce(
    model: PointerNetwork,
    observed: np.ndarray,
    fp_rate: float,
    fn_rate: float,
    steps: int,
    batch_size: int = 64,
    lr: float = 5e-4,
    max_len: int = 8,
    seed: int = 0,
) -> list:
    """Policy-gradient fine-tuning with a greedy (self-critical) baseline.

    The gradient estimate is
    :math:`\\frac1B\\sum_s (r(\\pi_s) - r(\\hat\\pi_s)) \\nabla \\log p(\\pi_s)` with
    :math:`\\pi_s` sampled and :math:`\\hat\\pi_s` the greedy decoding, :math:`r` from
    :func:`correction_reward`.  Returns the mean sampled reward of each step.
    """
    g = torch.Generator().manual_seed(seed)
    tokens = torch.from_numpy(entry_tokens(observed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        idx = torch.randint(len(observed), (batch_size,), generator=g)
        obs = observed[idx.numpy()]
        flips, logp = model.rollout(tokens[idx], max_len, sample=True, generator=g)
        with torch.no_grad():
            greedy, _ = model.rollout(tokens[idx], max_len)
        r = correction_reward(obs, flips, fp_rate, fn_rate)
        adv = torch.from_numpy(r - correction_reward(obs, greedy, fp_rate, fn_rate)).float()
        loss = -(adv * logp).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        history.append(float(r.mean()))
    return history


def simulate_noise_elimination_data(
    n_samples: int,
    n_cells: int,
    n_mutations: int,
    fp_rate: float,
    fn_rate: float,
    rng: np.random.Generator,
):
    """Noise-free infinite-sites matrices (half of them linear) and their noisy copies."""
    truth = np.stack(
        [
            genotype_matrix(n_cells, n_mutations, rng, linear=bool(rng.random() < 0.5))
            for _ in range(n_samples)
        ]
    )
    observed = np.stack([add_noise(a, fp_rate, fn_rate, rng) for a in truth])
    return observed, truth


@dataclass
class NoiseEliminationResult:
    """Accuracies on held-out matrices: exact recovery of A, per-entry accuracy, conflict-free
    rate, and mean :func:`correction_reward` (log-likelihood ratio, penalised when conflicts
    remain) of the pointer network's and of the minimum-flip corrections."""

    model: PointerNetwork
    pointer_exact: float
    pointer_entry: float
    pointer_conflict_free: float
    baseline_exact: float
    baseline_entry: float
    uncorrected_exact: float
    uncorrected_entry: float
    uncorrected_conflict_free: float
    pointer_reward: float
    baseline_reward: float


def train_noise_elimination(
    seed: int = 0,
    n_cells: int = 6,
    n_mutations: int = 6,
    fp_rate: float = 0.01,
    fn_rate: float = 0.1,
    n_train: int = 5000,
    n_test: int = 300,
    epochs: int = 8,
    batch_size: int = 64,
    max_len: int = 8,
    lr: float = 2e-3,
    rl_steps: int = 0,
) -> NoiseEliminationResult:
    """Train the pointer network on simulated matrices and compare it with the exact
    minimum-flip correction (:func:`phylo.ml.tumour.phylogeny.min_flip_correction`) on freshly
    simulated held-out matrices.

    With ``rl_steps`` > 0 the supervised network is then fine-tuned by :func:`reinforce` on the
    training matrices (no labels needed) towards the most likely conflict-free correction.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    obs, truth = simulate_noise_elimination_data(
        n_train, n_cells, n_mutations, fp_rate, fn_rate, rng
    )
    tokens = torch.from_numpy(entry_tokens(obs))
    targets = torch.from_numpy(flip_targets(obs, truth, max_len))
    model = PointerNetwork(tokens.shape[2])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(n_train)
        for s in range(0, n_train, batch_size):
            idx = perm[s : s + batch_size]
            loss = model(tokens[idx], targets[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    if rl_steps:
        reinforce(model, obs, fp_rate, fn_rate, rl_steps, max_len=max_len, seed=seed)
    model.eval()
    test_rng = np.random.default_rng(seed + 1_000_003)
    obs_t, truth_t = simulate_noise_elimination_data(
        n_test, n_cells, n_mutations, fp_rate, fn_rate, test_rng
    )
    flips = model.decode(torch.from_numpy(entry_tokens(obs_t)), max_len)
    corrected = obs_t.reshape(n_test, -1).copy()
    for s, f in enumerate(flips):
        corrected[s, f] = 1 - corrected[s, f]
    corrected = corrected.reshape(obs_t.shape)
    base = np.stack([min_flip_correction(a, fp_rate, fn_rate, max_flips=3)[0] for a in obs_t])
    base_flips = [list(np.flatnonzero(b.ravel() != a.ravel())) for a, b in zip(obs_t, base)]

    def exact(x):
        return float(np.mean((x == truth_t).all(axis=(1, 2))))

    def entry(x):
        return float(np.mean(x == truth_t))

    return NoiseEliminationResult(
        model,
        exact(corrected),
        entry(corrected),
        float(batch_is_perfect_phylogeny(corrected).mean()),
        exact(base),
        entry(base),
        exact(obs_t),
        entry(obs_t),
        float(batch_is_perfect_phylogeny(obs_t).mean()),
        float(correction_reward(obs_t, flips, fp_rate, fn_rate).mean()),
        float(correction_reward(obs_t, base_flips, fp_rate, fn_rate).mean()),
    )
