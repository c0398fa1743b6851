"""Statistics for comparing systems on the same questions: paired tests, bootstrap intervals, multiple
comparisons, and power (the paired t-test's and the exact McNemar test's).

Heavy libraries (scipy, statsmodels) are imported inside the functions, so importing this package is cheap.
"""

from engine.stats.bootstrap import PairedDifference, bootstrap_mean, paired_bootstrap
from engine.stats.exact_mcnemar import connor_sample_size, mcnemar_power, mcnemar_sample_size
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
    "bootstrap_mean",
    "compare_paired",
    "compare_variants",
    "connor_sample_size",
    "detectable_effect",
    "holm",
    "mcnemar_exact",
    "mcnemar_power",
    "mcnemar_sample_size",
    "minimum_sample_size",
    "paired_bootstrap",
    "paired_permutation",
    "paired_t",
    "power_of",
    "sensitivity",
    "wilcoxon_signed_rank",
]
