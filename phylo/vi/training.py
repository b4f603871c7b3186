r"""Training: Adam on the variational parameters, the annealing and learning-rate
schedules, a trace, resumable checkpoints, and the whole run from data to model.

Schedule (VBPI's form, with other defaults)
-------------------------------------------
At iteration :math:`i = 1, 2, \dots` the likelihood is raised to

.. math:: \beta_i = \min\big(1,\ \beta_0 + i / H\big)

(``anneal_start`` :math:`\beta_0 = 0.001`, ``anneal_iterations`` :math:`H`;
:math:`H = 0` trains on the posterior from the start), and both parameter groups (SBN
logits :math:`\phi`, branch-length parameters :math:`\psi`) take Adam steps (Kingma & Ba
2015; :math:`\beta_1 = 0.9`, :math:`\beta_2 = 0.999`, :math:`\epsilon = 10^{-8}`, as in
PyTorch) of learning rate

.. math:: \eta_i = \eta_0\, \gamma^{\lfloor (i - 1) / F \rfloor}

(``lr_decay`` :math:`\gamma = 0.75`, ``lr_decay_every`` :math:`F`), with :math:`\eta_0` =
``lr`` for the logits and ``lr_branch`` for the branch lengths.  Adam *ascends* the
objective.  VBPI's code runs 400,000 iterations with :math:`H = 100{,}000`,
:math:`F = 20{,}000` and both rates 0.001.  The defaults here are 60,000 iterations,
:math:`H = 20{,}000`, :math:`F = 10{,}000`, ``lr`` 0.0001 and ``lr_branch`` 0.003.  On DS1
(``benchmarks/vbpi.py``), against VBPI's rates over 200,000 iterations (:math:`H = 50{,}000`,
:math:`F = 20{,}000`, ``lr`` 0.001) from the same start, they end with KL to the golden runs
0.0124 against 0.0206, the same marginal likelihood within its error (-7108.48 (0.14) against
-7108.39 (0.25)) and an ELBO 0.2 lower (-7110.67 against -7110.45), in a third of the
iterations.  A learning rate of 0.001 on the logits moves the SBN towards the bound's
optimum, whose topology probabilities are skewed by how unequally the lognormal family fits
each topology (README, "sbn vi").

Starting point (a departure from VBPI)
--------------------------------------
VBPI starts the SBN uniform over each parent's children (``init="uniform"`` here) and trains
everything from the first iteration.  By default (``init="em-alpha"``) the SBN starts at the
SBN-EM-alpha estimate of the tree sample (:func:`phylo.sbn.fit`), and the topology
parameters are held there for ``hold_topology`` iterations (default: the annealing phase),
while the branch lengths are fitted with the ELBO's gradient, every drawn topology weighted
alike (``branch_elbo`` of :mod:`phylo.vi.estimators`).  Then everything is trained on the
chosen bound.  Why: with the self-normalised weights of :math:`L^K` only the best particle
of each step has its branch lengths trained, so a topology whose branch lengths start badly
stays bad and then loses its probability for good; on DS1 (short-run support, 60,000
iterations) a topology of posterior probability 0.065 fell to 0.0004 that way
(KL(golden || q) 0.76), while the warm start ends at KL 0.02 and an ELBO within 0.3 of
VBPI's in a seventh of its iterations.

``branch_objective="elbo"`` fits the branch lengths on the ELBO for the whole run (the
topology parameters still follow the estimator's bound): the lognormal family is then
placed where the ELBO wants it rather than widened for :math:`L^K`.  It raises the ELBO
(DS1: -7109.93 against -7110.67 with the default ``"bound"``), but the narrower lognormals
are worse importance-sampling proposals: ``marglik total --method vi-is`` with them is
biased low by up to 0.12 nats on DS1's most probable topologies, with standard errors of
0.03-0.07, so the default stays VBPI's.

Trace, checkpoints, divergence
------------------------------
Every ``trace_every`` iterations a row of the trace records the mean of the estimator's
objective at :math:`\beta = 1` over those iterations (``objective``: :math:`L^K` for
``vimco``/``rws``, an ELBO estimate for the others), its annealed mean, the largest
log-likelihood drawn, the likelihood evaluations so far and, every ``test_every``
iterations, an ELBO estimate from ``test_particles`` fresh draws (``elbo``, comparable
between estimators).  Every ``checkpoint_seconds`` (and at the end, and on an
interruption) the whole state (parameters, Adam moments, random generators, trace) is
written atomically to the checkpoint; the same run started again (after a crash, a kill
or a finished run given more ``iterations``) resumes from it and ends exactly where an
uninterrupted run would.
A step whose bound, weights or gradient is not finite stops the run with a
:class:`DivergenceError` naming the iteration; the last checkpoint, written before it, is
left as it is.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError, ModelError
from ..outputs import atomic_open
from .estimators import ESTIMATORS, make_estimator
from .family import INITS, VariationalFamily
from .objective import NonFiniteError, Target, evaluate, log_weights_sample

CHECKPOINT_FORMAT = "phylo-vi-checkpoint"
CHECKPOINT_VERSION = 1
TRACE_COLUMNS = (
    "iteration",
    "seconds",
    "beta",
    "lr",
    "objective",
    "annealed",
    "max_log_likelihood",
    "evaluations",
    "elbo",
)


class DivergenceError(ModelError):
    """The optimisation produced a non-finite bound or gradient."""


@dataclass
class Settings:
    """What a VI run does (see the module docstring for the schedules)."""

    estimator: str = "vimco"
    particles: int = 10
    iterations: int = 60_000
    lr: float = 0.0001
    lr_branch: float | None = 0.003
    lr_decay: float = 0.75
    lr_decay_every: int = 10_000
    anneal_start: float = 0.001
    anneal_iterations: int = 20_000
    psp: bool = True
    init: str = "em-alpha"
    hold_topology: int | None = None
    branch_objective: str = "bound"
    trace_every: int = 1000
    test_every: int = 5000
    test_particles: int = 1000
    checkpoint_seconds: float = 300.0

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise InputError(
                f"unknown estimator {self.estimator!r}: expected one of {', '.join(ESTIMATORS)}"
            )
        for name in ("particles", "iterations", "lr_decay_every", "trace_every", "test_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1")
        if not self.lr > 0 or (self.lr_branch is not None and not self.lr_branch > 0):
            raise InputError("learning rates must be positive")
        if not 0 < self.lr_decay <= 1:
            raise InputError("lr_decay must be in (0, 1]")
        if not 0 < self.anneal_start <= 1 or self.anneal_iterations < 0:
            raise InputError("anneal_start must be in (0, 1] and anneal_iterations >= 0")
        if self.init not in INITS:
            raise InputError(f"unknown init {self.init!r}: expected one of {', '.join(INITS)}")
        if self.hold_topology is not None and self.hold_topology < 0:
            raise InputError("hold_topology must be >= 0")
        if self.branch_objective not in ("bound", "elbo"):
            raise InputError("branch_objective must be 'bound' or 'elbo'")

    @property
    def topology_hold(self) -> int:
        """Iterations during which the topology logits are held at their start: by default
        the annealing phase when the topologies start at the sample's SBN-EM-alpha, none
        when they start uniform."""
        if self.hold_topology is not None:
            return int(self.hold_topology)
        return self.anneal_iterations if self.init == "em-alpha" else 0

    def beta(self, iteration: int) -> float:
        """:math:`\\beta_i`."""
        if self.anneal_iterations == 0:
            return 1.0
        return min(1.0, self.anneal_start + iteration / self.anneal_iterations)

    def learning_rates(self, iteration: int) -> tuple[float, float]:
        """:math:`(\\eta_i` for the logits, :math:`\\eta_i` for the branch lengths)."""
        f = self.lr_decay ** ((iteration - 1) // self.lr_decay_every)
        return self.lr * f, (self.lr if self.lr_branch is None else self.lr_branch) * f

    def identity(self) -> dict:
        """The settings that define a run (not how long it is, nor how it is logged)."""
        d = asdict(self)
        for k in ("iterations", "trace_every", "checkpoint_seconds"):
            d.pop(k)
        return d


class Adam:
    """Adam (Kingma & Ba 2015) for maximisation, on one parameter vector."""

    def __init__(self, n: int, beta1=0.9, beta2=0.999, eps=1e-8):
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def step(self, x: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
        """``x`` moved uphill along ``grad``."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        mhat = self.m / (1 - self.beta1**self.t)
        vhat = self.v / (1 - self.beta2**self.t)
        return x + lr * mhat / (np.sqrt(vhat) + self.eps)

    def state(self) -> dict:
        return {"t": self.t, "m": self.m.tolist(), "v": self.v.tolist()}

    def restore(self, state: dict) -> None:
        self.t = int(state["t"])
        self.m = np.asarray(state["m"], dtype=float)
        self.v = np.asarray(state["v"], dtype=float)


@dataclass
class TrainResult:
    """What :func:`train` leaves: the fitted family, the trace (one dict per row of
    :data:`TRACE_COLUMNS`), the iterations done in total, seconds spent in total (over
    resumed sessions), likelihood evaluations, and the iteration it resumed from (0 for a
    fresh run)."""

    family: VariationalFamily
    trace: list = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    evaluations: int = 0
    resumed_from: int = 0


# -- checkpoints -------------------------------------------------------------------------------


def _save_checkpoint(path, identity, it, seconds, evaluations, family, adams, rngs, trace, block):
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "identity": identity,
        "iteration": it,
        "seconds": seconds,
        "evaluations": evaluations,
        "family": family.to_dict(),
        "logits": family.phi.tolist(),
        "branch_parameters": family.branches.vector().tolist(),
        "adam": [a.state() for a in adams],
        "rng": [r.bit_generator.state for r in rngs],
        "trace": trace,
        "block": block,
    }
    text = json.dumps(state, allow_nan=False)
    with atomic_open(path) as fh:
        fh.write(text)


def load_checkpoint(path: str) -> dict:
    """The state in a checkpoint file (an :class:`InputError` if it is not one)."""
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the checkpoint: {exc}", path) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError("not a VI checkpoint", path)
    if state.get("format_version") != CHECKPOINT_VERSION:
        raise InputError(f"unsupported checkpoint version {state.get('format_version')!r}", path)
    return state


def _jsonable(x):
    return json.loads(json.dumps(x, default=str))


# -- training ---------------------------------------------------------------------------------


def train(
    family: VariationalFamily,
    target: Target,
    settings: Settings,
    rng: np.random.Generator,
    *,
    test_rng: np.random.Generator | None = None,
    checkpoint: str | None = None,
    identity: dict | None = None,
    on_trace=None,
    progress=None,
) -> TrainResult:
    """Fit ``family`` to ``target`` by stochastic gradient ascent (in place).

    Parameters
    ----------
    family, target
        The variational family and the unnormalised posterior.
    settings
        Estimator, particles, iterations, schedules, trace and checkpoint cadence.
    rng, test_rng
        Generators of the training draws and of the ELBO checks (independent streams,
        e.g. :func:`phylo.execution.task_rng`); both must be PCG64 generators, whose state
        the checkpoint keeps.
    checkpoint
        Path of the checkpoint.  If it exists and holds a run with the same ``identity``,
        training resumes from it; a different run there is an :class:`InputError`.
    identity
        What defines the run (inputs' digests, settings, seed); stored in the checkpoint.
    on_trace
        ``on_trace(rows)`` after every new trace row and at every checkpoint (e.g. to write
        the trace file).
    progress
        ``progress(iteration, objective)`` after every iteration (``objective``: the mean
        over the last trace block, NaN before the first).

    Raises
    ------
    DivergenceError
        When a bound, weight or gradient is not finite.
    """
    test_rng = test_rng if test_rng is not None else np.random.default_rng(rng.integers(2**63))
    identity = _jsonable({"settings": settings.identity(), **(identity or {})})
    estimator = make_estimator(settings.estimator, settings.particles)
    adams = [Adam(family.n_topology_params), Adam(family.n_branch_params)]
    rngs = [rng, test_rng]
    trace: list = []
    block = {"objective": [], "annealed": [], "max_log_likelihood": None}
    start, seconds, evaluations = 0, 0.0, 0
    saved_at = None
    if checkpoint is not None and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        if state["identity"] != identity:
            raise InputError(
                "the checkpoint belongs to another run (other inputs or settings); remove "
                "it or write the model elsewhere",
                checkpoint,
            )
        family.set_logits(np.asarray(state["logits"], dtype=float))
        family.branches.set_vector(np.asarray(state["branch_parameters"], dtype=float))
        for a, s in zip(adams, state["adam"]):
            a.restore(s)
        for r, s in zip(rngs, state["rng"]):
            r.bit_generator.state = s
        start = saved_at = int(state["iteration"])
        seconds = float(state["seconds"])
        evaluations = int(state["evaluations"])
        trace = list(state["trace"])
        block = state["block"]
    result = TrainResult(family, trace, start, seconds, evaluations, start)

    def save(it, secs):
        nonlocal saved_at
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint, identity, it, secs, evaluations, family, adams, rngs, trace, block
            )
            saved_at = it
        if on_trace is not None:
            on_trace(trace)

    def diverged(it, what):
        kept = (
            f"the last checkpoint (iteration {saved_at}) is kept in {checkpoint}"
            if saved_at is not None
            else "no checkpoint had been written yet"
        )
        return DivergenceError(
            f"the lower bound diverged at iteration {it}: {what}; {kept}; "
            "try a smaller learning rate (--lr)"
        )

    hold = settings.topology_hold
    elbo_branches = settings.branch_objective == "elbo"
    clock = time.monotonic()
    last_save = clock
    running = math.nan
    it = start
    for it in range(start + 1, settings.iterations + 1):
        beta = settings.beta(it)
        lr_phi, lr_psi = settings.learning_rates(it)
        try:
            step = estimator.step(
                family, target, beta, rng, branch_elbo=it <= hold or elbo_branches
            )
        except NonFiniteError as exc:
            raise diverged(it, str(exc)) from None
        if not (
            math.isfinite(step.objective)
            and np.isfinite(step.grad_phi).all()
            and np.isfinite(step.grad_psi).all()
        ):
            raise diverged(it, "the bound or its gradient is NaN or infinite")
        evaluations += step.evaluations
        new_psi = adams[1].step(family.branches.vector(), step.grad_psi, lr_psi)
        new_phi = None
        if it > hold:
            new_phi = adams[0].step(family.phi, step.grad_phi, lr_phi)
            if not np.isfinite(new_phi).all():
                raise diverged(it, "a topology parameter became NaN or infinite")
        if not np.isfinite(new_psi).all():
            raise diverged(it, "a branch-length parameter became NaN or infinite")
        if new_phi is not None:
            family.set_logits(new_phi)
        family.branches.set_vector(new_psi)
        block["objective"].append(step.objective)
        block["annealed"].append(step.annealed)
        top = block["max_log_likelihood"]
        block["max_log_likelihood"] = (
            step.max_log_likelihood if top is None else max(top, step.max_log_likelihood)
        )
        if it % settings.trace_every == 0 or it == settings.iterations:
            now = time.monotonic()
            elbo = None
            if it % settings.test_every == 0 or it == settings.iterations:
                try:
                    elbo = float(
                        log_weights_sample(family, target, settings.test_particles, test_rng).mean()
                    )
                except NonFiniteError as exc:
                    raise diverged(it, str(exc)) from None
            running = float(np.mean(block["objective"]))
            trace.append(
                {
                    "iteration": it,
                    "seconds": seconds + now - clock,
                    "beta": beta,
                    "lr": lr_phi,
                    "objective": running,
                    "annealed": float(np.mean(block["annealed"])),
                    "max_log_likelihood": block["max_log_likelihood"],
                    "evaluations": evaluations,
                    "elbo": elbo,
                }
            )
            block = {"objective": [], "annealed": [], "max_log_likelihood": None}
            if on_trace is not None:
                on_trace(trace)
        if progress is not None:
            progress(it, running)
        now = time.monotonic()
        if checkpoint is not None and now - last_save >= settings.checkpoint_seconds:
            save(it, seconds + now - clock)
            last_save = now
    total = seconds + time.monotonic() - clock
    if it > start or checkpoint is not None:
        save(max(it, start), total)
    result.trace = trace
    result.iterations = max(it, start)
    result.seconds = total
    result.evaluations = evaluations
    return result


@dataclass
class VIResult:
    """A finished run: the training result, the final evaluation
    (:class:`~phylo.vi.objective.Evaluation`, ``None`` when skipped) and the fit
    information stored in the model file."""

    training: TrainResult
    evaluation: object
    info: dict

    @property
    def family(self) -> VariationalFamily:
        return self.training.family


def variational_inference(
    alignment,
    sample,
    settings: Settings | None = None,
    seed: int = 0,
    *,
    model=None,
    prior=None,
    threads: int | None = None,
    checkpoint: str | None = None,
    identity: dict | None = None,
    on_trace=None,
    progress=None,
    evaluate_particles: int = 1000,
    evaluate_repeats: int = 10,
) -> VIResult:
    """VBPI from an alignment and a tree sample: the run behind ``sbn vi``.

    Parameters
    ----------
    alignment : phylo.likelihood.Alignment
        Its taxa must be those of the sample.
    sample : phylo.trees.TreeSample
        Unrooted trees (MCMC, bootstrap, UFBoot) whose SBN support the topologies keep.
    settings : Settings
    seed
        Every random draw derives from it (:func:`phylo.execution.task_rng`: training,
        ELBO checks and the final evaluation are separate streams).
    model, prior
        Substitution model (default JC69) and branch-length prior (default
        Exponential(10)).
    threads
        Threads the particles' likelihoods are split between.
    checkpoint, identity, on_trace, progress
        See :func:`train`.
    evaluate_particles, evaluate_repeats
        The final ELBO, :math:`L^K` and importance-sampling marginal likelihood use
        ``evaluate_repeats`` batches of ``evaluate_particles`` draws (0 repeats: none).

    Returns
    -------
    VIResult
    """
    from ..execution import task_rng
    from ..likelihood import JC69
    from ..likelihood.topology_batch import TopologyBatchLikelihood
    from ..marglik.posterior import ExponentialPrior
    from ..trees.taxa import check_same_taxa

    settings = settings if settings is not None else Settings()
    model = model if model is not None else JC69()
    prior = prior if prior is not None else ExponentialPrior(10.0)
    check_same_taxa(
        sample.taxa,
        alignment.taxa,
        sample.taxa.source or "the trees",
        alignment.path or "the alignment",
    )
    family = VariationalFamily.from_sample(sample, psp=settings.psp, init=settings.init)
    lik = TopologyBatchLikelihood(alignment, family.taxa, model, threads=threads)
    target = Target(lik, prior)
    ident = {
        "seed": seed,
        "model": model.describe(),
        "prior": prior.describe(),
        **(identity or {}),
    }
    res = train(
        family,
        target,
        settings,
        task_rng(seed, "train"),
        test_rng=task_rng(seed, "test"),
        checkpoint=checkpoint,
        identity=ident,
        on_trace=on_trace,
        progress=progress,
    )
    ev = None
    info = {
        "estimator": settings.estimator,
        "particles": settings.particles,
        "iterations": res.iterations,
        "seconds": res.seconds,
        "likelihood_evaluations": res.evaluations,
        "settings": asdict(settings),
        "model": model.describe(),
        "prior": prior.describe(),
        "support_topologies": int(sample.n_topologies),
    }
    if evaluate_repeats > 0:
        t0 = time.monotonic()
        ev = evaluate(
            family,
            target,
            task_rng(seed, "evaluate"),
            particles=evaluate_particles,
            repeats=evaluate_repeats,
            k=settings.particles if evaluate_particles % settings.particles == 0 else 1,
        )
        info["evaluation"] = ev.summary()
        info["evaluation"]["seconds"] = time.monotonic() - t0
    family.sbn.fit_info = info
    return VIResult(res, ev, info)
