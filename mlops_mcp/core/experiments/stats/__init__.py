"""Statistics for comparing two model variants: offline (paired), live (sequential) and shadow.

Why these procedures:

* Offline (``run_ab_test``) both variants predict the *same* rows, so every comparison is paired:
  McNemar (mid-p) for accuracy, DeLong for ROC AUC, paired t on per-row loss for MAE/MSE/log-loss/R^2,
  a paired bootstrap where the metric does not decompose into per-row terms (F1, RMSE). Pairing
  removes the row-to-row difficulty that both variants share, which is most of the noise.
* Live (``get_ab_test``) arms see different users, so tests are two-sample (two-proportion z,
  Welch t). Dashboards are looked at every day, which ruins a classic p-value (20 looks push an
  A/A test's false-positive rate from 5% to about 25%), so a winner is declared only on the
  always-valid mSPRT p-value (Johari, Koomen, Pekelis & Walsh, 2017/2022), which stays below alpha
  with probability <= alpha *however often* it is looked at. Its mixture is tuned from the minimum
  effect, and the test is sized for that rule (its boundary inverted), not for a single classic
  look; the sample-ratio check is likewise sequential (Lindon & Malek's multinomial test).
* Shadow: agreement with a Wilson interval (good coverage near 0 and 1, where agreement lives).

Conventions: ``a`` is the incumbent (champion / control), ``b`` the challenger; every difference is
``b - a`` in the metric's units; intervals are two-sided at level ``1 - alpha``. Bad input raises
:class:`~mlops_mcp.core.errors.InvalidInput` naming the argument; degenerate but legal input (no
discordant pairs, zero variance, identical predictions) gives a defined result with a ``note``.
The library uses numpy and scipy only.
"""

from mlops_mcp.core.experiments.stats.agreement import shadow_summary, wilson_interval
from mlops_mcp.core.experiments.stats.common import EXACT_MCNEMAR_BELOW, METRICS, MIN_SAMPLES_PER_ARM
from mlops_mcp.core.experiments.stats.design import (
    SRM_CONCENTRATION,
    achieved_power,
    required_sample_size,
    sequential_power,
    sequential_sample_size,
    srm_check,
    srm_log_bayes_factor,
)
from mlops_mcp.core.experiments.stats.offline import compare_offline, metric_direction, metric_name
from mlops_mcp.core.experiments.stats.paired import delong, mcnemar, paired_bootstrap, paired_t
from mlops_mcp.core.experiments.stats.readout import live_summary
from mlops_mcp.core.experiments.stats.sequential import (
    boundary_factor,
    horizon_ratio,
    horizon_tuned_tau2,
    mixture_variance,
    msprt_boundary,
    msprt_confidence_interval,
    msprt_p_value,
    msprt_p_value_path,
)
from mlops_mcp.core.experiments.stats.two_sample import (
    ArmData,
    compare_arms,
    two_proportion_z,
    welch_t,
    welch_t_samples,
)

__all__ = [
    "ArmData",
    "EXACT_MCNEMAR_BELOW",
    "METRICS",
    "MIN_SAMPLES_PER_ARM",
    "SRM_CONCENTRATION",
    "achieved_power",
    "boundary_factor",
    "compare_arms",
    "compare_offline",
    "delong",
    "horizon_ratio",
    "horizon_tuned_tau2",
    "live_summary",
    "mcnemar",
    "metric_direction", "metric_name",
    "mixture_variance",
    "msprt_boundary",
    "msprt_confidence_interval",
    "msprt_p_value",
    "msprt_p_value_path",
    "paired_bootstrap",
    "paired_t",
    "required_sample_size",
    "sequential_power",
    "sequential_sample_size",
    "shadow_summary",
    "srm_check",
    "srm_log_bayes_factor",
    "two_proportion_z",
    "welch_t",
    "welch_t_samples",
    "wilson_interval",
]
