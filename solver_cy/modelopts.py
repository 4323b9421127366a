"""The runpp options that shape the bus-branch model itself (admittances, topology), as one value
the engine keys its model cache on: a change of any of them rebuilds the model.  The face
(gridtape/options.py) validates the user's values and makes this."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelOptions:
    trafo_model: str = "t"  # "t" or "pi"
    voltage_angles: bool = True  # calculate_voltage_angles (resolved: no "auto")
    line_temperature: bool = False  # consider_line_temperature
    trafo3w_losses: str = "hv"  # hv, mv, lv, star
    switch_rx_ratio: float = 2.0
    neglect_open_switch_branches: bool = False


def as_model_options(value) -> ModelOptions:
    """A ModelOptions from itself or from a bare trafo_model string (the engine's old argument)."""
    if isinstance(value, ModelOptions):
        return value
    return ModelOptions(trafo_model=str(value))
