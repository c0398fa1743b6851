"""Statistics for comparing systems on the same questions: paired tests, multiple comparisons and power.

Heavy libraries (scipy, statsmodels) are imported inside the functions, so importing this package is cheap.
"""

from engine.stats.bootstrap import PairedDifference, paired_bootstrap
from engine.stats.multiple import Adjustment, VariantComparison, compare_variants, holm
from engine.stats.paired import (
    PairedComparison,
    TestResult,
    compare_paired,
    mcnemar_exact,
    paired_permutation,
    paired_t,
    wilcoxon_signed_rank,
)
from engine.stats.power import (
    Sensitivity,
    detectable_effect,
    mcnemar_sample_size,
    minimum_sample_size,
    power_of,
    sensitivity,
)

__all__ = [
    "Adjustment",
    "PairedComparison",
    "PairedDifference",
    "Sensitivity",
    "TestResult",
    "VariantComparison",
    "compare_paired",
    "compare_variants",
    "detectable_effect",
    "holm",
    "mcnemar_exact",
    "mcnemar_sample_size",
    "minimum_sample_size",
    "paired_bootstrap",
    "paired_permutation",
    "paired_t",
    "power_of",
    "sensitivity",
    "wilcoxon_signed_rank",
]
