"""Fixtures of the journal tests."""

from __future__ import annotations

import pytest
from journal_fixtures import Journal


@pytest.fixture
def journal() -> Journal:
    j = Journal()
    j.append(5)
    j.append(12)
    return j
