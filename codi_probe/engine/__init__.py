"""The latent engine: the exact CODI loop, traces, interventions (see ``loop.py``)."""

from .interventions import (AblateHeads, Add, Identity, Intervention, Mean, Noise, Op, Patch, Randomize, Scale, Set, Shuffle, Zero,
                            knockout, zero)
from .loop import PADDING_MODES, CodiEngine, Record, normalize_question
from .positions import FED_POSITIONS, LATENT_POSITIONS, NUM_LATENT, TRACE_POSITIONS, position_index
from .trace import Trace

__all__ = ["AblateHeads", "Add", "CodiEngine", "FED_POSITIONS", "Identity", "Intervention", "LATENT_POSITIONS", "Mean",
           "NUM_LATENT", "Noise", "Op", "PADDING_MODES", "Patch", "Randomize", "Record", "Scale", "Set", "Shuffle",
           "TRACE_POSITIONS", "Trace", "Zero", "knockout", "normalize_question", "position_index", "zero"]
