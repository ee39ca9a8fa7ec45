"""``vigie synth``'s engine: a deterministic synthetic population and its AMO/AMC claims.

Honest care follows DOMAIN.md §3 (renewals, prescription validity, 100 % Santé caps, AMO bases
and rates, contrat responsable ceilings, hearing-aid follow-ups, consultations before dental
prostheses); every fraud pattern of DOMAIN.md §4 is injected at a configurable rate and
recorded in a separate ground-truth file. NIRs are drawn to compute the beneficiaries'
first-level tokens, exactly as a member would, and are never written.

Files written into the output folder (JSONL, or CSV with a header row, same columns):

- ``claims-<member>.jsonl`` for ``cpam-75`` and every AMC: the claim-line specification's
  fields, in its order. ``member_reference`` is ``L-<n>`` per member; ``amo_claim_number``
  ``FSE-<event>`` and ``amc_reference`` ``DRE-<event>-<amc>`` tie the two sides of one visit.
- ``ground_truth.jsonl``: one row per claim line (``member``, ``member_reference``,
  ``fraud_pattern`` — ``""`` for honest —, ``scheme_id``, ``amount_at_stake_cents``). Every line
  of a scheme is tagged, including companion lines that cost nothing extra (the AMO side of an
  amount mismatch, the legitimate AMC claim of a double billing, the first billing of a
  duplicated item); those carry a stake of 0.
- ``population.json``: members, providers (role ``regular``, ``outlier`` or ``ring``),
  prescribers, the configuration (without the key) and counts.

Usage::

    summary = generate(SynthConfig(seed=7, shared_key=key), Path("out"))
"""

from gateway.synth._config import (
    AMO_MEMBER,
    DEFAULT_FRAUD_RATES,
    FRAUD_PATTERNS,
    OutputFormat,
    SynthConfig,
    SynthSummary,
)
from gateway.synth._generate import POPULATION_FILE, generate
from gateway.synth._output import CLAIM_FIELDS, GROUND_TRUTH_FIELDS, claims_file_name

__all__ = [
    "AMO_MEMBER",
    "CLAIM_FIELDS",
    "DEFAULT_FRAUD_RATES",
    "FRAUD_PATTERNS",
    "GROUND_TRUTH_FIELDS",
    "POPULATION_FILE",
    "OutputFormat",
    "SynthConfig",
    "SynthSummary",
    "claims_file_name",
    "generate",
]
