"""llama.cpp's decode constants are fitted from published llama-bench rates, not chosen: the
efficiency data must hold what the calibration points give, and the fit must describe them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigwise.catalog.load import catalog
from rigwise.errors import InputError
from rigwise.model.efficiency import engine_efficiency
from rigwise.model.infer import InferConfig, estimate_infer
from rigwise.validation.engine_fit import Fit, fit_file, load
from rigwise.workload.models import get_model

CALIBRATION = Path(__file__).parent / "calibration" / "llamacpp_decode.toml"


@pytest.fixture(scope="module")
def fits() -> list[Fit]:
    return fit_file(CALIBRATION)


def test_efficiency_data_holds_the_fitted_decode_constants(fits: list[Fit]) -> None:
    for f in fits:
        for target in f.targets:
            engine, _, vendor = target.partition(":")
            eng = engine_efficiency(engine, vendor)
            assert eng.memory == pytest.approx(f.eta, rel=0.01), target
            assert eng.launch_s == pytest.approx(f.tau_s, rel=0.01), target


def test_each_backend_fit_describes_its_points_within_five_percent(fits: list[Fit]) -> None:
    for f in fits:
        assert f.mape < 0.05, (f.name, f.mape)
        assert len(f.points) >= 5


def test_calibration_points_leave_out_the_validated_gpus_of_their_backend() -> None:
    """The validation rows of M2 Ultra (Metal) and RTX 4090/5090/3060 (CUDA graphs) stay
    blind: no calibration point of that backend measures those GPUs."""
    _, points = load(CALIBRATION)
    metal = {p.device for p in points if p.set == "metal"}
    graphs = {p.device for p in points if p.set == "cuda-graphs"}
    assert not any("m2-ultra" in d for d in metal)
    assert not graphs & {"RTX 4090", "RTX 5090", "RTX 3060 12GB"}


def test_metal_values_are_of_the_nominal_bandwidth() -> None:
    """On Apple GPUs llama.cpp's fitted share applies to the nominal bandwidth as it is (the
    Apple family factor is already in the fit): Llama-2-7B F16 on an M2 Ultra decodes at
    0.91 x 800 GB/s over its 13.5 GB of weights, slowed by the kernels shorter than the
    host's issue time (each costs that time instead)."""
    gpu = catalog().gpu("apple-m2-ultra")
    eng = engine_efficiency("llama.cpp", "apple")
    assert eng.of_nominal and eng.host_issued
    e = estimate_infer(get_model("llama-2-7b"), gpu,
                       InferConfig(weights="f16", prompt_tokens=1, output_tokens=2,
                                   engine="llama.cpp"))
    memory_s = e.memory.weights_bytes / (gpu.memory_bandwidth_bytes_per_s * eng.memory)
    kernels = 355  # rigwise's decode kernels per Llama-2-7B token
    assert memory_s < 1 / e.decode_tokens_per_s < memory_s + kernels * eng.launch_s


def test_a_point_of_an_unknown_set_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[set.a]\ntargets = ["llama.cpp"]\n\n[[point]]\nset = "b"\ndevice = "x"\n'
                   'gpu = "nvidia-rtx-3090"\nmodel = "llama-2-7b"\nweights = "q4_0"\n'
                   'tokens_per_s = 100\nsource = "s"\nsource_title = "t"\nas_of = 2024-01-01\n')
    with pytest.raises(InputError, match="unknown set"):
        load(bad)
