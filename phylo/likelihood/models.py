"""Reversible nucleotide substitution models with discrete Gamma rates and invariant sites.

A general time-reversible (GTR) rate matrix over (A, C, G, T) has off-diagonal entries

.. math:: Q_{ij} = \\mu \\, r_{ij} \\, \\pi_j, \\qquad r_{ij} = r_{ji},

with exchangeabilities :math:`r` in the order AC, AG, AT, CG, CT, GT, stationary
frequencies :math:`\\pi`, and :math:`\\mu` chosen so that one unit of branch length is one
expected substitution per site: :math:`-\\sum_i \\pi_i Q_{ii} = 1`.  Special cases:
JC69 (Jukes & Cantor 1969: all :math:`r = 1`, :math:`\\pi = 1/4`), K80 (Kimura 1980:
transitions AG, CT have :math:`r = \\kappa`, equal :math:`\\pi`), HKY85 (Hasegawa, Kishino &
Yano 1985: K80's :math:`r` with any :math:`\\pi`).  Here :math:`\\kappa` is the
transition/transversion *rate* ratio (the parameter PhyML calls ``ts/tv`` and MrBayes
``kappa``).

Transition probabilities come from the eigendecomposition of the symmetric matrix
:math:`S = \\Pi^{1/2} Q \\Pi^{-1/2}` (reversibility makes it symmetric):
:math:`S = U \\Lambda U^T` gives

.. math:: P(t) = e^{Qt} = V e^{\\Lambda t} V^{-1}, \\quad
          V = \\Pi^{-1/2} U, \\quad V^{-1} = U^T \\Pi^{1/2}.

Rate heterogeneity: a site's rate is 0 with probability :math:`p_{inv}` (invariant sites)
and otherwise drawn from K equally probable categories of a Gamma(:math:`\\alpha`,
:math:`\\alpha`) distribution (Yang 1994), represented by the category mean (the default)
or median.  Rates are scaled so that the mean over all sites is 1: the variable
categories have rates :math:`\\rho_k / (1 - p_{inv})` with :math:`\\bar\\rho = 1`.

References
----------
Jukes TH, Cantor CR. 1969. Evolution of protein molecules. Mammalian Protein Metabolism.
Kimura M. 1980. J Mol Evol 16:111-120.
Hasegawa M, Kishino H, Yano T. 1985. J Mol Evol 22:160-174.
Tavare S. 1986. Some probabilistic and statistical problems in the analysis of DNA
sequences. Lectures on Mathematics in the Life Sciences 17:57-86.
Yang Z. 1994. Maximum likelihood phylogenetic estimation from DNA sequences with variable
rates over sites: approximate methods. J Mol Evol 39:306-314.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError

__all__ = ["Model", "JC69", "K80", "HKY", "GTR", "parse_model", "gamma_rates"]

#: Order of the six exchangeabilities.
RATE_ORDER = ("AC", "AG", "AT", "CG", "CT", "GT")
_PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def gamma_rates(alpha: float, k: int, median: bool = False) -> np.ndarray:
    """Rates of k equally probable categories of a Gamma(alpha, alpha) distribution (mean 1).

    The category boundaries are the quantiles :math:`b_i = F^{-1}(i/k)`.  With
    ``median=False`` the rate of category i is its conditional mean,

    .. math:: \\rho_i = k \\left[ I(\\alpha b_{i+1}; \\alpha + 1) - I(\\alpha b_i; \\alpha + 1)
              \\right],

    where :math:`I(x; a)` is the regularised lower incomplete gamma function; with
    ``median=True`` it is the quantile :math:`F^{-1}((2i + 1) / 2k)`, rescaled so that
    the mean rate is 1 (Yang 1994).
    """
    if not alpha > 0:
        raise InputError(f"the Gamma shape must be positive, not {alpha}")
    if k < 1:
        raise InputError(f"the number of rate categories must be at least 1, not {k}")
    if k == 1:
        return np.ones(1)
    from scipy import special

    # quantiles of Gamma(alpha, rate alpha) are those of Gamma(alpha, 1) over alpha; the
    # special functions directly (a frozen scipy.stats distribution costs a millisecond,
    # and samplers that move alpha ask for the rates at every step)
    if median:
        r = special.gammaincinv(alpha, (2.0 * np.arange(k) + 1.0) / (2.0 * k))
        return r * k / r.sum()
    z = special.gammaincinv(alpha, np.arange(1, k) / k)  # alpha times the boundaries
    cdf = np.concatenate([[0.0], special.gammainc(alpha + 1.0, z), [1.0]])
    return k * np.diff(cdf)


@dataclass(frozen=True)
class Model:
    """A reversible nucleotide model with optional +Gamma and +I.

    Build one with :func:`JC69`, :func:`K80`, :func:`HKY`, :func:`GTR` or
    :func:`parse_model`.  All parameters are plain arrays and floats.

    Attributes
    ----------
    name : str
        ``"JC69"``, ``"K80"``, ``"HKY"`` or ``"GTR"``.
    exchangeabilities : float64 array (6,)
        :math:`r_{AC}, r_{AG}, r_{AT}, r_{CG}, r_{CT}, r_{GT}` (any scale).
    frequencies : float64 array (4,) or ``"empirical"``
        Stationary frequencies of A, C, G, T; ``"empirical"`` until resolved against an
        alignment with :meth:`resolve`.
    alpha : float or None
        Gamma shape; ``None`` for no rate variation.
    categories : int
        Number of Gamma categories (1 without Gamma).
    median : bool
        Category medians instead of means.
    pinv : float
        Proportion of invariant sites.
    """

    name: str
    exchangeabilities: np.ndarray
    frequencies: object
    alpha: float | None = None
    categories: int = 1
    median: bool = False
    pinv: float = 0.0

    def __post_init__(self):
        r = np.asarray(self.exchangeabilities, dtype=np.float64)
        if r.shape != (6,) or not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise InputError("exchangeabilities must be 6 positive numbers (AC AG AT CG CT GT)")
        object.__setattr__(self, "exchangeabilities", r)
        if not (isinstance(self.frequencies, str) and self.frequencies == "empirical"):
            f = np.asarray(self.frequencies, dtype=np.float64)
            if f.shape != (4,) or not np.all(np.isfinite(f)) or np.any(f <= 0):
                raise InputError("base frequencies must be 4 positive numbers (A C G T)")
            if abs(f.sum() - 1.0) > 1e-6:
                raise InputError(f"base frequencies must sum to 1, not {f.sum():.6g}")
            object.__setattr__(self, "frequencies", f / f.sum())
        if self.alpha is None:
            if self.categories != 1:
                raise InputError("rate categories need a Gamma shape (alpha)")
        elif not (self.alpha > 0 and np.isfinite(self.alpha)):
            raise InputError(f"the Gamma shape must be positive, not {self.alpha}")
        if int(self.categories) != self.categories or self.categories < 1:
            raise InputError(f"categories must be a positive integer, not {self.categories}")
        if not 0.0 <= self.pinv < 1.0:
            raise InputError(
                f"the proportion of invariant sites must be in [0, 1), not {self.pinv}"
            )

    # ------------------------------------------------------------------ parameters
    def resolve(self, alignment) -> Model:
        """This model with ``"empirical"`` frequencies replaced by the alignment's."""
        if isinstance(self.frequencies, str):
            return replace(self, frequencies=alignment.empirical_frequencies())
        return self

    def _freqs(self) -> np.ndarray:
        if isinstance(self.frequencies, str):
            raise InputError("empirical frequencies are not known yet: call resolve(alignment)")
        return self.frequencies

    def _memo(self, key: str, compute):
        """``compute()``, computed once per model object (read-only arrays): a sampler asks
        for the same model's rate matrix, eigensystem and category rates several times."""
        memo = self.__dict__.get("_memo_values")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_memo_values", memo)
        if key not in memo:
            value = compute()
            for a in value if isinstance(value, tuple) else (value,):
                a.flags.writeable = False
            memo[key] = value
        return memo[key]

    def rate_matrix(self) -> np.ndarray:
        """The normalised rate matrix Q (4 x 4), rows summing to 0, mean rate 1."""
        return self._memo("rate_matrix", self._rate_matrix)

    def _rate_matrix(self) -> np.ndarray:
        pi = self._freqs()
        q = np.zeros((4, 4))
        for (i, j), r in zip(_PAIRS, self.exchangeabilities):
            q[i, j] = r * pi[j]
            q[j, i] = r * pi[i]
        np.fill_diagonal(q, -q.sum(axis=1))
        return q / -(pi @ np.diag(q))

    def eigen(self):
        """Eigendecomposition ``(eigenvalues, V, V_inv)`` with ``Q = V diag(eigenvalues) V_inv``."""
        return self._memo("eigen", self._eigen)

    def _eigen(self):
        pi = self._freqs()
        q = self.rate_matrix()
        s = np.sqrt(pi)
        sym = (s[:, None] * q) / s[None, :]
        sym = 0.5 * (sym + sym.T)
        lam, u = np.linalg.eigh(sym)
        v = u / s[:, None]
        vinv = u.T * s[None, :]
        return lam, np.ascontiguousarray(v), np.ascontiguousarray(vinv)

    def transition_matrix(self, t: float, rate: float = 1.0) -> np.ndarray:
        """P(t) = exp(Q rate t) (4 x 4), row i = from state i."""
        lam, v, vinv = self.eigen()
        return (v * np.exp(lam * rate * t)) @ vinv

    def category_rates(self) -> np.ndarray:
        """Rates of the variable-site categories, scaled so the mean over all sites is 1."""
        return self._memo("category_rates", self._category_rates)

    def _category_rates(self) -> np.ndarray:
        if self.alpha is None:
            r = np.ones(1)
        else:
            r = gamma_rates(self.alpha, int(self.categories), self.median)
        return r / (1.0 - self.pinv)

    def category_weights(self) -> np.ndarray:
        """Probabilities of the variable-site categories given a variable site (1/K each)."""
        k = 1 if self.alpha is None else int(self.categories)
        return np.full(k, 1.0 / k)

    @property
    def n_categories(self) -> int:
        return 1 if self.alpha is None else int(self.categories)

    def describe(self) -> str:
        """A short name such as ``GTR+G4+I``."""
        s = self.name
        if self.alpha is not None:
            s += f"+G{self.categories}"
        if self.pinv > 0:
            s += "+I"
        return s


def gamma_rates_rows(alpha: np.ndarray, k: int, median: bool = False) -> np.ndarray:
    """:func:`gamma_rates` of every shape in ``alpha`` (B,) at once: (B, k)."""
    from scipy import special

    alpha = np.asarray(alpha, dtype=np.float64)[:, None]
    if k == 1:
        return np.ones((alpha.shape[0], 1))
    if median:
        r = special.gammaincinv(alpha, ((2.0 * np.arange(k) + 1.0) / (2.0 * k))[None, :])
        return r * k / r.sum(axis=1, keepdims=True)
    z = special.gammaincinv(alpha, (np.arange(1, k) / k)[None, :])
    B = alpha.shape[0]
    cdf = np.concatenate([np.zeros((B, 1)), special.gammainc(alpha + 1.0, z), np.ones((B, 1))], 1)
    return k * np.diff(cdf, axis=1)


def model_rows(exchangeabilities, frequencies, alpha, categories: int, median: bool, pinv):
    """The arrays of B models at once, as :class:`Model` computes them one by one: rate
    matrices Q (B, 4, 4), eigensystems (eigenvalues (B, 4), V and V^-1 (B, 4, 4)) and the
    categories' rates and weights (B, K).  ``exchangeabilities`` (B, 6), ``frequencies``
    (B, 4), ``alpha`` (B,) or None (no Gamma categories), ``pinv`` (B,).  For samplers that
    evaluate many models in one batch (the model's parameters drawn per row)."""
    r = np.asarray(exchangeabilities, dtype=np.float64)
    pi = np.asarray(frequencies, dtype=np.float64)
    pinv = np.asarray(pinv, dtype=np.float64)
    B = r.shape[0]
    q = np.zeros((B, 4, 4))
    for m, (i, j) in enumerate(_PAIRS):
        q[:, i, j] = r[:, m] * pi[:, j]
        q[:, j, i] = r[:, m] * pi[:, i]
    d = np.arange(4)
    q[:, d, d] = -q.sum(axis=2)
    beta = -np.einsum("bi,bi->b", pi, q[:, d, d])
    q /= beta[:, None, None]
    s = np.sqrt(pi)
    sym = (s[:, :, None] * q) / s[:, None, :]
    sym = 0.5 * (sym + np.swapaxes(sym, 1, 2))
    lam, u = np.linalg.eigh(sym)
    v = u / s[:, :, None]
    vinv = np.swapaxes(u, 1, 2) * s[:, None, :]
    if alpha is None:
        rates = np.ones((B, 1))
    else:
        rates = gamma_rates_rows(alpha, int(categories), median)
    rates = rates / (1.0 - pinv)[:, None]
    k = rates.shape[1]
    return {
        "rate_matrix": q,
        "eigenvalues": lam,
        "eigenvectors": v,
        "inverse": vinv,
        "frequencies": pi,
        "pinv": pinv,
        "category_rates": rates,
        "category_weights": np.full((B, k), 1.0 / k),
    }


def _freq_arg(frequencies):
    if frequencies is None or (isinstance(frequencies, str) and frequencies == "equal"):
        return np.full(4, 0.25)
    if isinstance(frequencies, str):
        if frequencies == "empirical":
            return "empirical"
        raise InputError(
            f"frequencies must be 'equal', 'empirical' or 4 numbers, not {frequencies!r}"
        )
    return np.asarray(frequencies, dtype=np.float64)


def _rates_kw(alpha, categories, median, pinv):
    if alpha is None:
        categories = 1
    return dict(
        alpha=None if alpha is None else float(alpha),
        categories=int(categories),
        median=bool(median),
        pinv=float(pinv),
    )


def JC69(*, alpha=None, categories=4, median=False, pinv=0.0) -> Model:
    """Jukes-Cantor (1969): equal rates and equal frequencies."""
    return Model("JC69", np.ones(6), np.full(4, 0.25), **_rates_kw(alpha, categories, median, pinv))


def K80(kappa: float = 2.0, *, alpha=None, categories=4, median=False, pinv=0.0) -> Model:
    """Kimura (1980): transition/transversion rate ratio ``kappa``, equal frequencies."""
    if not kappa > 0:
        raise InputError(f"kappa must be positive, not {kappa}")
    r = np.array([1.0, kappa, 1.0, 1.0, kappa, 1.0])
    return Model("K80", r, np.full(4, 0.25), **_rates_kw(alpha, categories, median, pinv))


def HKY(
    kappa: float = 2.0, frequencies="empirical", *, alpha=None, categories=4, median=False, pinv=0.0
) -> Model:
    """Hasegawa, Kishino & Yano (1985): K80's ``kappa`` with given stationary frequencies.

    ``frequencies`` is ``"equal"``, ``"empirical"`` or 4 numbers (A, C, G, T).
    """
    if not kappa > 0:
        raise InputError(f"kappa must be positive, not {kappa}")
    r = np.array([1.0, kappa, 1.0, 1.0, kappa, 1.0])
    return Model("HKY", r, _freq_arg(frequencies), **_rates_kw(alpha, categories, median, pinv))


def GTR(
    rates=(1, 1, 1, 1, 1, 1),
    frequencies="empirical",
    *,
    alpha=None,
    categories=4,
    median=False,
    pinv=0.0,
) -> Model:
    """General time-reversible model (Tavare 1986).

    ``rates`` are the six exchangeabilities AC, AG, AT, CG, CT, GT (any scale);
    ``frequencies`` is ``"equal"``, ``"empirical"`` or 4 numbers (A, C, G, T).
    """
    return Model(
        "GTR",
        np.asarray(rates, dtype=np.float64),
        _freq_arg(frequencies),
        **_rates_kw(alpha, categories, median, pinv),
    )


_SPEC = re.compile(r"^(JC69|JC|K80|K2P|HKY85|HKY|GTR)((?:\+(?:G\d*|I|F))*)$", re.IGNORECASE)


def _numbers(text, n: int, what: str) -> list[float] | None:
    if text is None:
        return None
    if not isinstance(text, str):
        vals = [float(x) for x in text]
    else:
        try:
            vals = [float(x) for x in text.replace(" ", "").split(",")]
        except ValueError:
            vals = []
    if len(vals) != n:
        raise InputError(f"--{what} needs {n} comma-separated numbers, not {text!r}")
    return vals


def model_spec(
    spec: str = "JC69",
    *,
    kappa=None,
    rates=None,
    frequencies=None,
    gamma_shape=None,
    pinv=None,
    median: bool = False,
) -> dict:
    """A checked, picklable description of a substitution model, from options as written.

    ``rates`` is six comma-separated GTR exchangeabilities (``AC,AG,AT,CG,CT,GT``) or six
    numbers; ``frequencies`` is ``equal``, ``empirical`` or four numbers (A, C, G, T).
    :func:`model_from_spec` builds the model; building it here first makes a bad option an
    :class:`~phylo.errors.InputError` before any work starts.
    """
    if frequencies is not None and frequencies not in ("equal", "empirical"):
        frequencies = _numbers(frequencies, 4, "frequencies")
    out = {
        "model": spec,
        "kappa": kappa,
        "rates": _numbers(rates, 6, "rates"),
        "frequencies": frequencies,
        "alpha": gamma_shape,
        "pinv": pinv,
        "median": bool(median),
    }
    model_from_spec(out)
    return out


def model_from_spec(spec: dict) -> Model:
    """The model a :func:`model_spec` dict describes."""
    kw = dict(spec)
    return parse_model(kw.pop("model", "JC69"), **kw)


def parse_model(
    spec: str, *, kappa=None, rates=None, frequencies=None, alpha=None, pinv=None, median=False
) -> Model:
    """A model from a name such as ``JC69``, ``HKY+G4``, ``GTR+G4+I``.

    ``+G<k>`` adds k Gamma categories (shape ``alpha``, default 1.0), ``+I`` invariant
    sites (proportion ``pinv``, default 0.1 unless given), ``+F`` empirical frequencies
    (the default for HKY and GTR when ``frequencies`` is not given).
    """
    m = _SPEC.match(spec.strip().replace(" ", ""))
    if not m:
        raise InputError(
            f"unknown model {spec!r} (expected JC69, K80, HKY or GTR, optionally "
            "with +G<k>, +I, +F)"
        )
    base = m.group(1).upper()
    mods = [x for x in m.group(2).upper().split("+") if x]
    k, use_i, use_f = None, False, False
    for x in mods:
        if x.startswith("G"):
            k = int(x[1:]) if len(x) > 1 else 4
        elif x == "I":
            use_i = True
        elif x == "F":
            use_f = True
    if k is None and alpha is not None:
        k = 4
    kw = dict(
        alpha=(alpha if alpha is not None else 1.0) if k else None,
        categories=k or 1,
        median=median,
        pinv=(pinv if pinv is not None else 0.1) if use_i else (pinv or 0.0),
    )
    if base in ("JC69", "JC"):
        if frequencies not in (None, "equal") or kappa is not None or rates is not None:
            raise InputError("JC69 has no kappa, rates or frequencies to set")
        return JC69(**kw)
    if base in ("K80", "K2P"):
        if frequencies not in (None, "equal") or rates is not None:
            raise InputError("K80 has equal frequencies and no GTR rates")
        return K80(2.0 if kappa is None else kappa, **kw)
    freqs = frequencies if frequencies is not None else "empirical"
    if use_f and frequencies not in (None, "empirical"):
        raise InputError("+F means empirical frequencies; do not give frequencies as well")
    if base in ("HKY", "HKY85"):
        if rates is not None:
            raise InputError("HKY has kappa, not GTR rates")
        return HKY(2.0 if kappa is None else kappa, freqs, **kw)
    if kappa is not None:
        raise InputError("GTR has six rates, not kappa")
    return GTR((1, 1, 1, 1, 1, 1) if rates is None else rates, freqs, **kw)
