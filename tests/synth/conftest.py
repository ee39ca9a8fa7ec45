from __future__ import annotations

import pytest

from gateway.synth import SynthSummary, generate

from .synth_data import Dataset, config, load


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, SynthSummary]:
    """One run shared by the read-only tests (1,000 beneficiaries, every pattern on)."""
    cfg = config()
    folder = tmp_path_factory.mktemp("synth")
    summary = generate(cfg, folder)
    return load(folder, cfg), summary


@pytest.fixture(scope="session")
def dataset(generated: tuple[Dataset, SynthSummary]) -> Dataset:
    return generated[0]
