"""rigwise: which GPU for my deep-learning work? Memory, speed and price, with the reasons.

The public API (the CLI is a thin shell over it)::

    from rigwise import catalog, get_model, estimate_train, TrainConfig
    gpu = catalog().gpu("RTX 4090")
    est = estimate_train(get_model("llama-3-8b"), gpu, TrainConfig(task="qlora", batch_size=4))
    est.fits, est.memory.per_gpu_bytes, est.step_time_s, est.mfu
"""

from rigwise.advise.rank import Advice, Constraints, Option, Workload, advise
from rigwise.catalog.load import Catalog, catalog
from rigwise.catalog.models import Cpu, Gpu
from rigwise.errors import (
    CatalogError,
    ConfigFileError,
    InputError,
    RigwiseError,
    UnknownNameError,
    UnsupportedError,
)
from rigwise.model.estimate import TrainConfig, TrainEstimate, estimate_train
from rigwise.model.infer import InferConfig, InferEstimate, estimate_infer
from rigwise.model.memory import MemoryBreakdown
from rigwise.workload.from_torch import from_torch
from rigwise.workload.models import builtin_models, get_model
from rigwise.workload.schema import CnnShape, Model, TracedShape, TransformerShape

__version__ = "0.1.0"

__all__ = [
    "Advice",
    "Catalog",
    "CatalogError",
    "CnnShape",
    "ConfigFileError",
    "Constraints",
    "Cpu",
    "Gpu",
    "InferConfig",
    "InferEstimate",
    "InputError",
    "MemoryBreakdown",
    "Model",
    "Option",
    "RigwiseError",
    "TracedShape",
    "TrainConfig",
    "TrainEstimate",
    "TransformerShape",
    "UnknownNameError",
    "UnsupportedError",
    "Workload",
    "__version__",
    "advise",
    "builtin_models",
    "catalog",
    "estimate_infer",
    "estimate_train",
    "from_torch",
    "get_model",
]
