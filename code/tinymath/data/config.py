"""The schema of `configs/data/<profile>.yaml`: one file configures both data stages.

`synth:` configures the embedded offline generators (absent in the `paper` profile, which reads hub datasets) and
`prepare:` the cleaning, dedup, mixing, decontamination and packing of the pretraining corpus.
"""

from __future__ import annotations

from tinymath.config import Section
from tinymath.data.prepare.config import PrepareConfig
from tinymath.data.synthetic.config import SynthConfig
from tinymath.runner import Requirements


class DataConfig(Section):
    seed: int = 0
    requires: Requirements = Requirements()
    synth: SynthConfig | None = None
    prepare: PrepareConfig
