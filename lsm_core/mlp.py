"""scikit-learn's MLPClassifier, trained by a compiled epoch loop: the same fits, at 0.14-0.16x the CPU.

On the thousand-row training sets of a spatial-CV fold, sklearn's MLP spends most of its time in
Python, not in arithmetic: each minibatch of 200 rows goes through list comprehensions, input
checks and a dozen small numpy calls (about 0.35 ms a batch against tens of microseconds of BLAS),
and after every epoch ``metrics.accuracy_score`` checks its inputs for longer than the epoch takes.

For the case the models use (binary labels, ``solver="adam"``, ``activation="relu"``, shuffled
minibatches, float64 inputs, no sample weights, early stopping), :class:`EarlyStoppingMLP` runs the
minibatches of an epoch in one numba function (:func:`_adam_epoch`) and scores the validation split
in another (:func:`_n_correct`). Both do sklearn's arithmetic in sklearn's order: the same BLAS
products, numpy's pairwise sum where numpy reduces one column, libm's ``exp`` and ``log`` as
scipy's ``expit`` and ``xlogy``. The Python loop around them is sklearn's ``_fit_stochastic`` for
this case: the same validation split, the same shuffle draws from the estimator's RandomState,
``_update_no_improvement_count``'s rule and the restored best weights. Every other case runs
sklearn's own loop, with the early-stopping accuracy computed without ``accuracy_score``'s checks.

The weights, stopping epoch, loss curve and predictions equal sklearn's bit for bit
(lsm_assets_tests/lsm_core/test_mlp.py; numba's products go through SciPy's OpenBLAS, numpy's through
its own: another BLAS build could differ in the last bit, and that test would say so).
``benchmarks/bench_mlp.py`` measures both.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit
from numba.typed import List
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

__all__ = ["EarlyStoppingMLP", "compile_kernels"]


class EarlyStoppingMLP(MLPClassifier):
    """:class:`sklearn.neural_network.MLPClassifier` (same parameters, same results); see the module docstring."""

    # set by MLPClassifier's fit (declared for the type checker: sklearn is untyped)
    coefs_: list[np.ndarray]
    intercepts_: list[np.ndarray]
    best_validation_score_: float
    _no_improvement_count: int

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        if sample_weight is not None:  # the weighted average keeps sklearn's own path
            return float(super()._score(X, y, sample_weight=sample_weight))
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan  # as sklearn: a diverged network scores NaN
        # accuracy_score of 1-D labels is float(np.average(y_true == y_pred)) once its checks pass
        return float(np.average(np.asarray(y) == y_pred))

    def _compiled_case(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> bool:
        """Whether this fit is the case _adam_epoch reproduces (else sklearn's own loop runs)."""
        return (not incremental and self.early_stopping and self.solver == "adam" and self.shuffle
                and self.activation == "relu" and self.out_activation_ == "logistic" and sample_weight is None
                and not sp.issparse(X) and X.dtype == np.float64 and y.ndim == 2 and y.shape[1] == 1)

    def _fit_stochastic(self, X: Any, y: Any, sample_weight: Any, activations: Any, deltas: Any, coef_grads: Any,
                        intercept_grads: Any, layer_units: Any, incremental: bool) -> None:
        if not self._compiled_case(X, y, sample_weight, incremental):
            return super()._fit_stochastic(X, y, sample_weight, activations, deltas, coef_grads, intercept_grads,
                                           layer_units, incremental)
        # sklearn's _fit_stochastic for this case, with the minibatch loop compiled
        self._optimizer = optimizer = AdamOptimizer(self.coefs_ + self.intercepts_, self.learning_rate_init,
                                                    self.beta_1, self.beta_2, self.epsilon)
        X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=self._random_state,
                                                          test_size=self.validation_fraction, stratify=y)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        X_c = np.ascontiguousarray(X_train)
        y_c = np.ascontiguousarray(y_train[:, 0], dtype=np.float64)
        n_layers = len(self.coefs_)
        # typed lists hold the very arrays of coefs_, intercepts_ and the optimizer: updated in place
        coefs, intercepts = List(self.coefs_), List(self.intercepts_)
        m_coef, m_int = List(optimizer.ms[:n_layers]), List(optimizer.ms[n_layers:])
        v_coef, v_int = List(optimizer.vs[:n_layers]), List(optimizer.vs[n_layers:])
        X_val_c = np.ascontiguousarray(X_val)
        val_class = y_val[:, 0].astype(np.int64)  # binarized: 1 = classes_[1], as the predicted class below
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            # sklearn's shuffle(sample_idx, random_state=...) without its input checks: the same draw
            perm = np.arange(n_samples)
            self._random_state.shuffle(perm)
            sample_idx = sample_idx[perm]
            accumulated_loss, optimizer.t = _adam_epoch(
                X_c, y_c, sample_idx, batch_size, coefs, intercepts, m_coef, v_coef, m_int, v_int, optimizer.t,
                float(self.learning_rate_init), float(self.beta_1), float(self.beta_2), float(self.epsilon),
                float(self.alpha))
            self.n_iter_ += 1
            self.loss_ = accumulated_loss / n_samples
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            # _update_no_improvement_count, with the validation accuracy of _score computed compiled
            score = _n_correct(X_val_c, val_class, coefs, intercepts) / len(val_class)
            self.validation_scores_.append(score)
            self._no_improvement_count = (self._no_improvement_count + 1
                                          if score < self.best_validation_score_ + self.tol else 0)
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
            if self._no_improvement_count > self.n_iter_no_change:
                break  # adam's trigger_stopping always stops
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        optimizer.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** optimizer.t)
                                   / (1 - self.beta_1 ** optimizer.t)) if optimizer.t else self.learning_rate_init
        self.coefs_, self.intercepts_ = self._best_coefs, self._best_intercepts


def compile_kernels() -> None:
    """Compile the numba kernels into their on-disk cache (``make install`` runs this once; else ~15 s per process)."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two epochs: enough to compile, not to converge
        EarlyStoppingMLP(hidden_layer_sizes=(4, 3), early_stopping=True, max_iter=2, random_state=0).fit(
            X, (X[:, 0] > 0).astype(int))


@njit(cache=True)
def _block_sum(a, lo, n):  # pragma: no cover - compiled
    """numpy's sum of a[lo:lo+n] for n <= 128: in order below 8 values, else 8 interleaved partial sums."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a, n):  # pragma: no cover - compiled
    """numpy's pairwise summation of a[:n] (how np.sum / np.mean reduce one contiguous axis).

    Above 128 values numpy sums the two halves (the first a multiple of 8 long) and adds them; the
    recursion runs on an explicit stack here, because numba's cache cannot reload a recursive function.
    """
    if n <= 128:
        return _block_sum(a, 0, n)
    los, ns, opened = np.empty(128, np.int64), np.empty(128, np.int64), np.zeros(128, np.bool_)
    values = np.empty(128)
    los[0], ns[0] = 0, n
    top, n_values = 1, 0
    while top:
        lo, m = los[top - 1], ns[top - 1]
        if m <= 128:
            values[n_values] = _block_sum(a, lo, m)
            n_values += 1
            top -= 1
        elif opened[top - 1]:  # both halves summed: left below right on the value stack
            values[n_values - 2] = values[n_values - 2] + values[n_values - 1]
            n_values -= 1
            top -= 1
        else:
            opened[top - 1] = True
            half = m // 2
            half -= half % 8
            los[top], ns[top], opened[top] = lo + half, m - half, False  # right half: summed second
            los[top + 1], ns[top + 1], opened[top + 1] = lo, half, False
            top += 2
    return values[0]


@njit(cache=True)
def _forward(x, coefs, intercepts):  # pragma: no cover - compiled
    """sklearn's ``_forward_pass``: the activations of every layer, ``x`` first, relu hidden, expit output."""
    acts = List()
    acts.append(x)
    for i in range(len(coefs)):
        a = np.dot(acts[i], coefs[i])
        a += intercepts[i]
        if i != len(coefs) - 1:
            np.maximum(a, 0.0, a)
        else:
            for r in range(a.shape[0]):
                a[r, 0] = 1.0 / (1.0 + np.exp(-a[r, 0]))  # scipy.special.expit
        acts.append(a)
    return acts


@njit(cache=True)
def _n_correct(X, y_class, coefs, intercepts):  # pragma: no cover - compiled
    """Rows whose predicted class (probability > 0.5, as LabelBinarizer.inverse_transform) equals ``y_class``."""
    out = _forward(X, coefs, intercepts)[len(coefs)]
    hits = 0
    for r in range(out.shape[0]):
        hits += (1 if out[r, 0] > 0.5 else 0) == y_class[r]
    return hits


@njit(cache=True)
def _adam_epoch(X, y, order, batch_size, coefs, intercepts, m_coef, v_coef, m_int, v_int, t,
                lr_init, beta_1, beta_2, epsilon, alpha):  # pragma: no cover - compiled
    """One epoch of sklearn's adam minibatch loop (relu hidden layers, logistic output), in place.

    ``order``: the epoch's shuffled row order; ``t``: adam's step count before the epoch. Returns
    (the epoch's summed batch loss x batch size, the step count after it). Each expression keeps
    sklearn's operand order (``_backprop``, ``_compute_loss_grad``, ``AdamOptimizer._get_updates``).
    """
    n = order.shape[0]
    n_layers = len(coefs)
    eps = np.finfo(np.float64).eps
    accumulated = 0.0
    start = 0
    while start < n:
        stop = min(start + batch_size, n)
        nb = stop - start
        rows = order[start:stop]
        xb = np.empty((nb, X.shape[1]))
        yb = np.empty((nb, 1))
        for r in range(nb):
            xb[r] = X[rows[r]]
            yb[r, 0] = y[rows[r]]
        acts = _forward(xb, coefs, intercepts)
        out = acts[n_layers]
        terms = np.empty(nb)  # binary_log_loss: xlogy(y, p) + xlogy(1 - y, 1 - p), p clipped
        for r in range(nb):
            p = min(max(out[r, 0], eps), 1 - eps)
            yr = yb[r, 0]
            terms[r] = (yr * np.log(p) if yr != 0 else 0.0) + ((1 - yr) * np.log(1 - p) if 1 - yr != 0 else 0.0)
        values = 0.0
        for i in range(n_layers):
            w = coefs[i].ravel()
            values += np.dot(w, w)
        loss = -(_pairwise_sum(terms, nb) / nb) + (0.5 * alpha) * values / nb
        accumulated += loss * nb
        coef_grads, int_grads = List(), List()
        for i in range(n_layers):
            coef_grads.append(np.empty_like(coefs[i]))
            int_grads.append(np.empty_like(intercepts[i]))
        delta = out - yb
        for i in range(n_layers - 1, -1, -1):  # _compute_loss_grad, then back through layer i
            g = np.dot(acts[i].T, delta)
            g += alpha * coefs[i]
            g /= nb
            coef_grads[i] = g
            mean = np.zeros(delta.shape[1])
            if delta.shape[1] == 1:  # numpy reduces a single column pairwise, several column by column
                mean[0] = _pairwise_sum(delta[:, 0].copy(), nb)
            else:
                for r in range(nb):
                    mean += delta[r]
            int_grads[i] = mean / nb
            if i > 0:
                d = np.dot(delta, coefs[i].T)
                hidden = acts[i]
                for r in range(nb):
                    for c in range(d.shape[1]):
                        if hidden[r, c] == 0:
                            d[r, c] = 0.0
                delta = d
        t += 1
        lr = lr_init * np.sqrt(1 - beta_2 ** float(t)) / (1 - beta_1 ** float(t))
        for i in range(n_layers):
            g = coef_grads[i]
            m_coef[i][:] = beta_1 * m_coef[i] + (1 - beta_1) * g
            v_coef[i][:] = beta_2 * v_coef[i] + (1 - beta_2) * (g * g)
        for i in range(n_layers):
            g = int_grads[i]
            m_int[i][:] = beta_1 * m_int[i] + (1 - beta_1) * g
            v_int[i][:] = beta_2 * v_int[i] + (1 - beta_2) * (g * g)
        for i in range(n_layers):
            coefs[i] += -lr * m_coef[i] / (np.sqrt(v_coef[i]) + epsilon)
        for i in range(n_layers):
            intercepts[i] += -lr * m_int[i] / (np.sqrt(v_int[i]) + epsilon)
        start = stop
    return accumulated, t
