"""SHAP factor importances of fitted binary classifiers (DESIGN 4 ``shap_importance``; paper a's claim
that better negatives give steadier explanations, measured by ``importance_stability``).

Explainer and raw output scale by the model's LAST estimator (the preprocessing of a Pipeline is applied first):

- tree (random forest, extra trees, decision tree, sklearn GBDT, LightGBM): exact ``shap.TreeExplainer``,
  tree-path-dependent (no background: the trees' own training covers). Scale = the model's raw output:
  log-odds for GBDT / LightGBM, probability for sklearn forests (their leaves hold class fractions).
- linear (logistic regression): ``shap.LinearExplainer`` against the background mean; log-odds.
- anything else (SVM, MLP, calibrated wrappers): permutation SHAP (default, ``lsm_core.permutation_shap``)
  or ``shap.KernelExplainer`` on predict_proba[:, 1] of the WHOLE pipeline over the original factors, with
  a small sampled background; probability.
  Explaining the pipeline is the same game as explaining the final estimator on transformed features
  with each factor's columns as one player; it never builds impossible one-hot rows (two classes hot).

Tree and linear SHAP values of transformed columns are mapped back to the original factors by summing
the SIGNED values of a factor's columns per row, then |.|, then the mean over rows. Shapley values add
over players, so that signed sum is the factor's contribution to the row's output (for a linear model
exactly the grouped SHAP value); summing |SHAP| of the one-hot columns instead would count the coupled
dummies (one turns on, the others off) several times and inflate factors with many classes.

One output scale for every model: probability (``output="probability"``, the default). Models whose
raw output is log-odds (GBDT, LightGBM, logistic regression) are then explained like the SVM and MLP,
by permutation SHAP of predict_proba[:, 1] (interventional, probability); their predictions are cheap,
so this costs about what the exact log-odds explainer did. Two cheaper ways were measured and refused:
rescaling log-odds values to probability (DeepLIFT's rescale rule) inflated mean |SHAP| 1.1-3.5x
against the probability game where contributions cancel in a saturated sigmoid; shap's interventional
TreeExplainer with ``model_output="probability"`` fails its additivity check on sklearn's
HistGradientBoosting and costs 5x on LightGBM. Forests stay on the exact tree explainer (their raw
output is already probability). ``output="raw"`` keeps each explainer's own scale (log-odds or
probability). ``importance_shares`` (importance / sum, unitless) is what weights factors (the JS
threshold) and compares them across models.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse
from scipy.stats import kendalltau, spearmanr

from lsm_core.errors import ModelError
from lsm_core.permutation_shap import permutation_shap


def _shap() -> Any:
    """The shap module, imported on first use (it takes seconds and pulls matplotlib)."""
    with warnings.catch_warnings():
        # shap 0.51's colour maps call Colormap.set_bad/set_over/set_under, which matplotlib marks as
        # pending deprecation at import time; nothing we can fix here
        warnings.filterwarnings("ignore", r"The set_(bad|over|under) function", PendingDeprecationWarning)
        import shap
    return shap


@dataclass(frozen=True)
class ShapValues:
    """Signed SHAP values of explained rows per original factor, in the units named by ``output``."""

    values: pd.DataFrame  # rows x factors, in ``output`` units (probability by default)
    data: pd.DataFrame  # the explained rows, original factor values
    base_value: float  # expected model output (same units); values.sum(axis=1) + base_value = output
    output: str  # "probability" (default) or "log-odds" (``output="raw"`` of a boosted / linear model)
    explainer: str  # "tree", "linear", "permutation" or "kernel"

    def importance(self) -> pd.Series:
        """Mean |SHAP| per factor (output units), sorted descending."""
        imp = self.values.abs().mean(axis=0).sort_values(ascending=False, kind="stable")
        imp.name, imp.index.name = "mean_abs_shap", "factor"
        imp.attrs = {"output": self.output, "explainer": self.explainer}
        return imp


def importance_shares(importance: pd.Series) -> pd.Series:
    """Importances normalised to sum 1 (unitless), comparable across output scales."""
    total = float(importance.sum())
    shares = importance / total if total > 0 else importance * np.nan
    return shares.rename("share")


def shap_values_for_plot(
    model: Any,
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    n_background: int = 100,
    n_explain: int | None = 500,
    random_state: int = 0,
    agnostic_explain: int | None = 200,
    agnostic_background: int = 20,
    agnostic_method: Literal["permutation", "kernel"] = "permutation",
    agnostic_permutations: int = 1,
    agnostic_samples: int | str = 512,
    tree_explain: int | None = None,
    output: Literal["probability", "raw"] = "probability",
) -> ShapValues:
    """SHAP values of up to ``n_explain`` rows of ``X`` (seeded sample) per original factor of a fitted model.

    ``background`` (default: ``n_background`` rows sampled from ``X``) is the reference for the linear and
    model-agnostic explainers (trees use their own training covers). The model-agnostic explainers (SVM,
    MLP) explain at most ``agnostic_explain`` of the rows against ``agnostic_background`` background rows:

    - ``"permutation"`` (default): ``shap.PermutationExplainer``'s estimator (``lsm_core.permutation_shap``,
      batched over rows) with ``agnostic_permutations`` antithetic permutations per row, i.e. permutations x
      2 (factors - 1) x background predictions per row (560 for 15 factors and 20 background rows).
      Exactly additive for every permutation; the noise of one permutation per row averages out over the
      rows of the mean |SHAP|.
    - ``"kernel"``: ``shap.KernelExplainer`` with ``agnostic_samples`` coalitions per row (all coalitions
      when 2^factors - 2 <= that): 512 x background predictions per row, about 6x the default's cost (bench_demo.py).
      ``benchmarks/bench_demo.py`` measures how far the two rankings differ.

    ``tree_explain``: the exact tree explainer (random forests; boosted models with ``output="raw"``) explains
    at most this many of the rows, a seeded uniform subset of them (None = all). Deep forests make it the
    costliest explainer per row, and their mean |SHAP| ranking settles on fewer rows (benchmarks/bench_demo.py);
    the rows, background and values of every other explainer do not depend on it.

    ``output``: ``"probability"`` (default) puts every model on the probability scale (log-odds models go
    to the model-agnostic explainer, see the module notes); ``"raw"`` keeps the explainer's own scale.
    """
    if output not in ("probability", "raw"):
        raise ModelError(f"output must be 'probability' or 'raw', got {output!r}")
    if not isinstance(X, pd.DataFrame) or X.empty:
        raise ModelError("X must be a non-empty DataFrame of conditioning factors")
    if tree_explain is not None and tree_explain < 1:
        raise ModelError(f"tree_explain must be >= 1 row or None, got {tree_explain}")
    rng = np.random.default_rng(random_state)
    data = _sample_rows(X, n_explain, rng)
    bg = _sample_rows(X if background is None else background[list(X.columns)], n_background, rng)
    pre, est = _split(model)
    classes = list(getattr(est, "classes_", [0, 1]))
    if len(classes) != 2:
        raise ModelError(f"SHAP importance needs a binary classifier, got classes {classes}")
    # explained: classes_[1], sklearn's positive class (the landslide label 1 of 0/1 samples)
    kind, scale = _kind(est)
    on_proba = output == "probability" and scale == "log-odds"  # one scale for all (module notes)
    if on_proba:
        kind, scale = "kernel", "probability"
    if kind == "kernel":
        data = data.iloc[:agnostic_explain]  # already a random sample of X
        # permutation for the boosted and linear models even when the SVM / MLP get the kernel explainer
        # (thorough preset): its cost per model stays that of their exact explainer
        if agnostic_method == "permutation" or (on_proba and agnostic_method == "kernel"):
            values, base = _permutation_shap(model, data, bg.iloc[:agnostic_background], agnostic_permutations,
                                             random_state)
            return ShapValues(values, data, base, scale, "permutation")
        if agnostic_method != "kernel":
            raise ModelError(f"agnostic_method must be 'permutation' or 'kernel', got {agnostic_method!r}")
        values, base = _kernel_shap(model, data, bg.iloc[:agnostic_background], agnostic_samples, random_state)
        return ShapValues(values, data, base, scale, kind)

    if kind == "tree" and tree_explain is not None and tree_explain < len(data):
        # a generator of its own: the background above and every other explainer stay as they were
        data = _sample_rows(data, tree_explain, np.random.default_rng([random_state, 0x7EE]))
    z = _transform(pre, data)
    if kind == "tree" and type(est).__module__.startswith("lightgbm") and len(classes) == 2:
        # shap's TreeExplainer gets these very values from LightGBM's own TreeSHAP (pred_contrib), but first
        # parses a dump of every tree into its own structure, which costs more than the explanation itself
        contrib = np.asarray(est.predict(z, pred_contrib=True), float)
        raw, bases = contrib[:, :-1], contrib[:, -1]
    else:
        shap = _shap()
        if kind == "tree":
            explainer = shap.TreeExplainer(est)
        else:
            zbg = _transform(pre, bg)
            explainer = shap.LinearExplainer(est, shap.maskers.Independent(zbg, max_samples=len(zbg)))
        # the call API (not .shap_values) keeps one array layout for LightGBM, without shap's layout warning
        explanation = explainer(z)
        raw, bases = np.asarray(explanation.values), np.asarray(explanation.base_values)
    if raw.ndim == 3:  # forests give one slice per class
        raw, bases = raw[..., 1], bases[..., 1]
    base_value = float(np.ravel(bases)[0])  # the same for every row

    factors = _factor_of_columns(pre, list(X.columns), raw.shape[1])
    grouping = pd.get_dummies(pd.Categorical(factors, categories=list(X.columns))).to_numpy(float)
    values = pd.DataFrame(raw @ grouping, index=data.index, columns=list(X.columns))
    return ShapValues(values, data, base_value, scale, kind)


def shap_importance(
    model: Any,
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    n_background: int = 100,
    n_explain: int | None = 500,
    random_state: int = 0,
    **kwargs: Any,
) -> pd.Series:
    """Mean |SHAP| per original factor (probability unless ``output="raw"``, see ``.attrs["output"]``), sorted
    descending."""
    return shap_values_for_plot(
        model, X, background=background, n_background=n_background, n_explain=n_explain,
        random_state=random_state, **kwargs,
    ).importance()


def plot_shap_values(sv: ShapValues, path: str | Path, *, kind: str = "beeswarm", max_display: int = 20,
                     title: str | None = None) -> Path:
    """Summary plot (``beeswarm`` or ``bar``) of SHAP values, written atomically to ``path`` (format from suffix)."""
    # Figure + Agg canvas (not pyplot): no global state, safe in threads and headless runs
    from lsm_core.plots import new_figure, save_figure

    if kind not in ("beeswarm", "bar"):
        raise ModelError(f"plot kind must be 'beeswarm' or 'bar', got {kind!r}")
    order = list(sv.importance().index[:max_display])[::-1]  # most important on top
    fig = new_figure(7, 1.2 + 0.4 * len(order))
    ax = fig.add_subplot()
    if kind == "bar":
        ax.barh(order, sv.importance()[order], color="tab:blue")
        ax.set_xlabel(f"mean |SHAP value| ({sv.output})")
    else:
        jitter = np.random.default_rng(0)  # fixed: the same values always give the same picture
        for i, f in enumerate(order):
            v, x = sv.values[f].to_numpy(), sv.data[f].to_numpy(float)
            lo, hi = np.nanpercentile(x, [5, 95]) if np.isfinite(x).any() else (0.0, 1.0)
            colour = np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.full_like(x, 0.5)
            pts = ax.scatter(v, i + jitter.uniform(-0.3, 0.3, len(v)), c=colour, cmap="coolwarm", vmin=0, vmax=1,
                             s=8, alpha=0.8, linewidths=0)
        ax.set_yticks(range(len(order)), order)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(f"SHAP value ({sv.output})")
        bar = fig.colorbar(pts, ax=ax, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("factor value")
    ax.set_title(title or f"SHAP summary ({sv.explainer} explainer, {len(sv.data)} rows)")
    return save_figure(fig, path, dpi=120)


def plot_shap_summary(model: Any, X: pd.DataFrame, path: str | Path, *, kind: str = "beeswarm",
                      title: str | None = None, **kwargs: Any) -> Path:
    """Compute SHAP values (``shap_values_for_plot`` keywords) and write their summary plot to ``path``."""
    return plot_shap_values(shap_values_for_plot(model, X, **kwargs), path, kind=kind, title=title)


def importance_stability(
    make_and_fit: Callable[[np.ndarray], Any] | Any,
    X: pd.DataFrame,
    y: Sequence[int] | np.ndarray,
    *,
    n_bootstrap: int = 10,
    random_state: int = 0,
    n_explain: int | None = 200,
    n_background: int = 100,
    output: Literal["probability", "raw"] = "raw",
    **kwargs: Any,
) -> dict[str, Any]:
    """Rank stability of SHAP importances over ``n_bootstrap`` refits on class-stratified bootstrap resamples.

    ``make_and_fit(indices)`` returns a model fitted on ``X.iloc[indices]``; an sklearn estimator is cloned and
    fitted instead. Every refit is explained on the same rows and background. Returns ``spearman`` and
    ``kendall`` (mean pairwise rank correlation of the importances, -1..1, higher = steadier),
    ``share_mean`` / ``share_std`` per factor (unitless), ``importances`` (refit x factor) and ``output``.
    ``output`` defaults to ``"raw"``: refits of one model are compared only with each other, by rank, so one
    scale across models is not needed, and the exact tree explainer is 3x cheaper than permutation SHAP on
    LightGBM (1.3 vs 4.0 CPU s for 5 refits on the demo, Spearman 0.92 vs 0.91).
    """
    if n_bootstrap < 2:
        raise ModelError(f"n_bootstrap must be >= 2 to compare rankings, got {n_bootstrap}")
    y = np.asarray(y)
    if len(y) != len(X) or len(np.unique(y)) != 2:
        raise ModelError("y must hold two classes and one label per row of X")
    rng = np.random.default_rng(random_state)
    explain = _sample_rows(X, n_explain, rng)
    bg = _sample_rows(X, n_background, rng)
    if hasattr(make_and_fit, "fit") and hasattr(make_and_fit, "get_params"):
        from sklearn.base import clone

        estimator = make_and_fit
        make_and_fit = lambda idx: clone(estimator).fit(X.iloc[idx], y[idx])  # noqa: E731

    rows, scale = [], ""
    for _ in range(n_bootstrap):
        # stratified: every resample keeps the class counts, so refits differ in the rows drawn, not the balance
        idx = np.sort(np.concatenate([rng.choice(c, len(c)) for c in (np.flatnonzero(y == k) for k in np.unique(y))]))
        imp = shap_importance(make_and_fit(idx), explain, background=bg, n_background=len(bg), n_explain=None,
                              random_state=random_state, output=output, **kwargs)
        rows.append(imp.reindex(X.columns))
        scale = imp.attrs["output"]
    imps = pd.DataFrame(rows, index=pd.RangeIndex(n_bootstrap, name="bootstrap"))
    shares = imps.div(imps.sum(axis=1), axis=0)
    rho, tau = [], []
    for a, b in combinations(imps.to_numpy(), 2):
        if np.ptp(a) > 0 and np.ptp(b) > 0:  # a constant ranking has no rank correlation (scipy would warn)
            rho.append(spearmanr(a, b).statistic)
            tau.append(kendalltau(a, b).statistic)
    return {
        "spearman": float(np.mean(rho)) if rho else float("nan"),
        "kendall": float(np.mean(tau)) if tau else float("nan"),
        "share_mean": shares.mean(axis=0).rename("share_mean"),
        "share_std": shares.std(axis=0, ddof=1).rename("share_std"),
        "importances": imps,
        "output": scale,
        "n_bootstrap": n_bootstrap,
    }


# --- helpers ---

def _sample_rows(df: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows of ``df`` drawn without replacement, in their original order."""
    if n is None or n >= len(df):
        return df
    return df.iloc[np.sort(rng.choice(len(df), n, replace=False))]


def _split(model: Any) -> tuple[Any | None, Any]:
    """(preprocessing or None, final estimator) of a Pipeline or a bare estimator."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return (model[:-1] if len(model.steps) > 1 else None), model.steps[-1][1]
    return None, model


def _kind(est: Any) -> tuple[str, str]:
    """(explainer, output scale) for the final estimator: tree, linear or kernel (model-agnostic)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if isinstance(est, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier, ExtraTreeClassifier)):
        return "tree", "probability"  # leaves hold class fractions, averaged over the trees
    boosted = (GradientBoostingClassifier, HistGradientBoostingClassifier)
    if isinstance(est, boosted) or type(est).__module__.startswith("lightgbm"):
        return "tree", "log-odds"  # boosted raw scores
    if isinstance(est, (LogisticRegression, LogisticRegressionCV)):
        return "linear", "log-odds"
    return "kernel", "probability"


def _transform(pre: Any | None, df: pd.DataFrame) -> Any:
    """Rows as the final estimator sees them (dense; a DataFrame stays one so feature names stay consistent)."""
    z = df if pre is None else pre.transform(df)
    return z.toarray() if scipy.sparse.issparse(z) else z


def _proba_of_rows(model: Any, data: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """predict_proba[:, 1] of ``model`` on float arrays shaped like ``data`` (codes cast back to their dtype)."""
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"{type(model).__name__} has no predict_proba to explain")
    columns, dtypes = list(data.columns), data.dtypes.to_dict()
    named = hasattr(model, "feature_names_in_")  # pass names only to models fitted with them (sklearn warns)

    def proba(a: np.ndarray) -> np.ndarray:
        rows = pd.DataFrame(a, columns=columns).astype(dtypes)  # background rows keep codes valid
        return model.predict_proba(rows if named else rows.to_numpy())[:, 1]

    return proba


def _permutation_shap(model: Any, data: pd.DataFrame, bg: pd.DataFrame, permutations: int,
                      seed: int) -> tuple[pd.DataFrame, float]:
    """Permutation SHAP of predict_proba[:, 1] over the original factors: (values, base value), probability."""
    prepared = _column_wise_prep(model, data, bg)
    if prepared is not None:  # the preprocessing applied once, not to each of the ~10^5 masked rows
        f, z, zbg, factor_of_column = prepared
        values, base = permutation_shap(f, z, zbg, permutations=permutations, seed=seed,
                                        factor_of_column=factor_of_column)
    else:
        values, base = permutation_shap(_proba_of_rows(model, data), data.to_numpy(float), bg.to_numpy(float),
                                        permutations=permutations, seed=seed)
    return pd.DataFrame(values, index=data.index, columns=list(data.columns)), base


def _column_wise_prep(model: Any, data: pd.DataFrame,
                      bg: pd.DataFrame) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray,
                                                 np.ndarray] | None:
    """(predict_proba[:, 1] of the final estimator, transformed data, transformed background, factor of each
    transformed column) when the model's preprocessing works column by column (a ColumnTransformer of one-hot
    encoders, standard scalers and passthrough, dense array output, after the FactorCheck); None otherwise.

    For such a preprocessing, transforming a masked row (some factors from the row, the others from a
    background row) gives the masked row of the transformed columns, value for value, so the permutation
    states can be built after the transform.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from lsm_core.models import FactorCheck

    if not isinstance(model, Pipeline) or len(model.steps) < 2 or not hasattr(model.steps[-1][1], "predict_proba"):
        return None
    steps = [s for _, s in model.steps[:-1]]
    cts = [s for s in steps if isinstance(s, ColumnTransformer)]
    if len(cts) != 1 or not all(isinstance(s, (FactorCheck, ColumnTransformer)) for s in steps):
        return None
    ct = cts[0]
    parts = [t for _, t, _ in ct.transformers_]
    if getattr(ct, "_sklearn_output_config", {}).get("transform", "default") != "default" or not all(
            t in ("drop", "passthrough") or type(t) in (OneHotEncoder, StandardScaler) or
            (type(t) is FunctionTransformer and t.func is None) for t in parts):  # the latter: a passthrough
        return None
    est, pre = model.steps[-1][1], model[:-1]
    if hasattr(est, "feature_names_in_"):
        return None  # fitted on a DataFrame: it wants names, the generic path passes them
    z, zbg = (_transform(pre, d) for d in (data, bg))
    if not isinstance(z, np.ndarray) or z.ndim != 2:
        return None
    factors = list(data.columns)
    try:
        mapped = _factor_of_columns(pre, factors, z.shape[1])
    except ModelError:
        return None
    factor_of_column = np.array([factors.index(m) for m in mapped])
    if np.unique(factor_of_column).size != len(factors):
        return None  # a factor without a column (dropped): leave it to the generic path

    def proba(a: np.ndarray) -> np.ndarray:
        return est.predict_proba(a)[:, 1]

    return proba, np.asarray(z, float), np.asarray(zbg, float), factor_of_column


def _kernel_shap(model: Any, data: pd.DataFrame, bg: pd.DataFrame, nsamples: int | str,
                 seed: int) -> tuple[pd.DataFrame, float]:
    """Kernel SHAP of predict_proba[:, 1] over the original factors: (values, base value), probability."""
    proba, columns = _proba_of_rows(model, data), list(data.columns)
    shap = _shap()
    # KernelExplainer enumerates all coalitions when 2^p - 2 <= nsamples (deterministic); otherwise it samples
    # from numpy's global RNG, so seed it and restore the caller's state afterwards
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        explainer = shap.KernelExplainer(proba, bg.to_numpy(float))
        # l1_reg=False: keep every factor (the default num_features(10) would zero all but ten)
        raw = explainer.shap_values(data.to_numpy(float), nsamples=nsamples, l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    return pd.DataFrame(np.asarray(raw), index=data.index, columns=columns), float(explainer.expected_value)


def _factor_of_columns(pre: Any | None, factors: list[str], n_out: int) -> list[str]:
    """The original factor behind each transformed column (one-hot columns share their factor)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in pre.steps] if isinstance(pre, Pipeline) else [pre]
    cts = [s for s in steps if isinstance(s, ColumnTransformer)]
    if pre is None:
        mapped = factors
    elif len(cts) == 1 and sum(s.stop - s.start for s in cts[0].output_indices_.values()) == n_out:
        # the other steps (a row check before, column-wise steps after) keep the width, so the CT's order holds;
        # the CT may reorder (categorical columns first), so never assume the input order
        mapped = _ct_factors(cts[0], factors)
    elif n_out == len(factors) and not cts:
        mapped = factors  # column-wise steps such as a scaler
    else:
        names = [str(n).split("__", 1)[-1] for n in pre.get_feature_names_out(factors)]
        mapped = [_prefix_factor(n, factors) for n in names]
    if len(mapped) != n_out:
        raise ModelError(f"cannot map {n_out} transformed columns back to the factors {factors}")
    return mapped


def _ct_factors(ct: Any, factors: list[str]) -> list[str]:
    """Factor per output column of a fitted ColumnTransformer, from each transformer's input columns."""
    mapped = [""] * sum(s.stop - s.start for s in ct.output_indices_.values())
    for name, trans, cols in ct.transformers_:
        out = ct.output_indices_.get(name, slice(0, 0))
        width = out.stop - out.start
        if width == 0 or trans == "drop":
            continue
        cols = _as_names(cols, factors)
        if len(cols) == 1:
            block = cols * width
        elif width == len(cols):
            block = cols
        else:  # an encoder that widens several columns: one-hot names are "<factor>_<class>"
            block = [_prefix_factor(str(n), cols) for n in trans.get_feature_names_out(cols)]
        mapped[out] = block
    return mapped


def _as_names(spec: Any, factors: list[str]) -> list[str]:
    """A ColumnTransformer column spec (names, positions, mask or slice) as factor names."""
    if isinstance(spec, (str, int, np.integer)):
        spec = [spec]
    if isinstance(spec, slice):
        return factors[spec]
    spec = list(spec)
    if spec and all(isinstance(s, (bool, np.bool_)) for s in spec):
        return [f for f, keep in zip(factors, spec, strict=True) if keep]
    return [factors[s] if isinstance(s, (int, np.integer)) else str(s) for s in spec]


def _prefix_factor(name: str, factors: list[str]) -> str:
    """The longest factor that ``name`` is or starts with (``<factor>_...``)."""
    hits = [f for f in factors if name == f or name.startswith(f"{f}_")]
    if not hits:
        raise ModelError(f"transformed column {name!r} matches none of the factors {factors}")
    return max(hits, key=len)
