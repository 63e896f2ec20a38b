"""lsm_core: landslide susceptibility mapping on arrays and rasters, without Dagster.

The entry points a notebook reaches first are importable from the package itself::

    >>> import lsm_core
    >>> lsm_core.SpatialKFold(n_splits=3).get_n_splits()
    3

They are imported lazily (PEP 562), on first use: importing every science module takes about
2 s (scikit-learn, geopandas, rasterio, numba), and ``import lsm_core`` alone should not.
The exceptions are imported eagerly, so ``except lsm_core.LsmError`` costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lsm_core.errors import (
    ConfigError,
    DeliveryError,
    GridMismatchError,
    InputFileError,
    InventoryError,
    LsmError,
    ModelError,
    SamplingError,
    ShapeError,
)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "AreaGrid": "grid",
    "EnvironmentFactorsResult": "environment",
    "slope_deg": "terrain", "aspect_deg": "terrain", "terrain_factors": "terrain",
    "route_d8": "hydrology", "flow_accumulation": "hydrology",
    "distance_decay": "proximity", "proximity_factor": "proximity", "watersheds": "proximity",
    "slope_units": "proximity",
    "fit_velocity": "deformation", "decimal_years": "deformation", "los_to_downslope": "deformation",
    "deformation_rate": "deformation", "DeformationRateResult": "deformation",
    "positive_samples": "sampling", "random_negatives": "sampling", "buffer_negatives": "sampling",
    "insar_pu_negatives": "sampling", "PUDiagnostics": "sampling", "NegativeStrategy": "sampling",
    "NEGATIVE_STRATEGIES": "sampling",
    "BaggingPUClassifier": "pu", "select_reliable_negatives": "pu",
    "SpatialKFold": "spatial_cv", "RepeatedSpatialKFold": "spatial_cv",
    "build_factor_stack": "stack", "FactorStackResult": "stack",
    "make_model": "models",
    "predict_map": "predict", "predict_in_memory": "predict", "PredictMapResult": "predict",
    "js_threshold_curve": "threshold", "JSHistogramAccumulator": "threshold", "weights_from": "threshold",
    "WeightScheme": "threshold",
    "prone_areas": "prone", "ProneAreasResult": "prone", "natural_breaks": "prone", "classify": "prone",
    "open_close": "prone",
    "training_accuracy": "evaluation", "prone_occurrence": "evaluation", "prediction_rate_curve": "evaluation",
    "PredictionRateCurve": "evaluation", "MaskSummary": "evaluation", "TrainingAccuracy": "evaluation",
    "ProneOccurrence": "evaluation", "InventoryState": "catalog",
    "deformation_susceptibility_contingency": "contingency", "ContingencyResult": "contingency",
    "generate_demo": "synthetic", "generate_area": "synthetic", "toy_area": "synthetic",
}

# the literal list (not built from _LAZY) lets linters and type checkers read it
__all__ = ["ConfigError", "DeliveryError", "GridMismatchError", "InputFileError", "InventoryError", "LsmError",
           "ModelError", "SamplingError", "ShapeError", "AreaGrid", "BaggingPUClassifier", "ContingencyResult",
           "DeformationRateResult",
           "EnvironmentFactorsResult", "InventoryState",
           "FactorStackResult", "MaskSummary", "PredictionRateCurve", "ProneOccurrence", "TrainingAccuracy",
           "JSHistogramAccumulator", "NEGATIVE_STRATEGIES", "NegativeStrategy", "PUDiagnostics", "PredictMapResult",
           "ProneAreasResult", "RepeatedSpatialKFold", "SpatialKFold", "WeightScheme",
           "aspect_deg", "buffer_negatives", "build_factor_stack", "classify", "decimal_years", "deformation_rate",
           "deformation_susceptibility_contingency", "distance_decay", "fit_velocity", "flow_accumulation",
           "generate_area", "generate_demo", "insar_pu_negatives", "js_threshold_curve", "los_to_downslope",
           "make_model", "natural_breaks", "open_close", "positive_samples", "predict_in_memory", "predict_map",
           "prediction_rate_curve", "prone_areas", "prone_occurrence", "proximity_factor", "random_negatives",
           "route_d8", "select_reliable_negatives", "slope_deg", "slope_units", "terrain_factors", "toy_area",
           "training_accuracy", "watersheds", "weights_from"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lsm_core' has no attribute {name!r}")
    value = getattr(import_module(f"lsm_core.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from lsm_core.catalog import InventoryState
    from lsm_core.contingency import ContingencyResult, deformation_susceptibility_contingency
    from lsm_core.deformation import (
        DeformationRateResult,
        decimal_years,
        deformation_rate,
        fit_velocity,
        los_to_downslope,
    )
    from lsm_core.environment import EnvironmentFactorsResult
    from lsm_core.evaluation import (
        MaskSummary,
        PredictionRateCurve,
        ProneOccurrence,
        TrainingAccuracy,
        prediction_rate_curve,
        prone_occurrence,
        training_accuracy,
    )
    from lsm_core.grid import AreaGrid
    from lsm_core.hydrology import flow_accumulation, route_d8
    from lsm_core.models import make_model
    from lsm_core.predict import PredictMapResult, predict_in_memory, predict_map
    from lsm_core.prone import ProneAreasResult, classify, natural_breaks, open_close, prone_areas
    from lsm_core.proximity import distance_decay, proximity_factor, slope_units, watersheds
    from lsm_core.pu import BaggingPUClassifier, select_reliable_negatives
    from lsm_core.sampling import (
        NEGATIVE_STRATEGIES,
        NegativeStrategy,
        PUDiagnostics,
        buffer_negatives,
        insar_pu_negatives,
        positive_samples,
        random_negatives,
    )
    from lsm_core.spatial_cv import RepeatedSpatialKFold, SpatialKFold
    from lsm_core.stack import FactorStackResult, build_factor_stack
    from lsm_core.synthetic import generate_area, generate_demo, toy_area
    from lsm_core.terrain import aspect_deg, slope_deg, terrain_factors
    from lsm_core.threshold import JSHistogramAccumulator, WeightScheme, js_threshold_curve, weights_from
