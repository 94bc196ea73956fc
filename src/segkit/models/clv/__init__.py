"""Who is still a customer and what they are worth (SPEC §3, CLV): one module per model.

- ``fitting``: ``Fit`` and the maximum-likelihood machinery shared by the models;
- ``bgnbd``, ``pareto_nbd``, ``mbg_nbd``: the counting models (purchases and dropout);
- ``gamma_gamma``: the value per purchase;
- ``inputs``: the per-customer model inputs; ``run``: the pipeline step (``ClvResult``,
  ``fit_clv``, ``attach``, ``run_clv``, the churn rule);
- ``simulate``: draws from the models with known parameters (tests, benchmarks).

The names below are the package's API; import the model modules for the rest.
"""

from segkit.models.clv.bgnbd import NO_DROPOUT, bgnbd_expected, bgnbd_loglik, bgnbd_p_alive, fit_bgnbd
from segkit.models.clv.fitting import Fit, maximise
from segkit.models.clv.gamma_gamma import fit_gamma_gamma, gg_expected_value, gg_loglik
from segkit.models.clv.inputs import CUSTOMER_INPUTS, inputs_from_base, model_inputs
from segkit.models.clv.run import (
    CHURN_LEVELS, CLV_COLUMNS, INDEPENDENCE_WARN, ClvResult, attach, churn_rule, churn_rule_text,
    discounted_revenue, fit_clv, run_clv, skipped_warnings,
)

__all__ = [
    "CHURN_LEVELS", "CLV_COLUMNS", "CUSTOMER_INPUTS", "INDEPENDENCE_WARN", "NO_DROPOUT", "ClvResult", "Fit",
    "attach", "bgnbd_expected", "bgnbd_loglik", "bgnbd_p_alive", "churn_rule", "churn_rule_text",
    "discounted_revenue", "fit_bgnbd", "fit_clv", "fit_gamma_gamma", "gg_expected_value", "gg_loglik",
    "inputs_from_base", "maximise", "model_inputs", "run_clv", "skipped_warnings",
]
