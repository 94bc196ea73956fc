"""``pipeline.add_models`` runs the nulls' tests beside k-means and the CLV fit; its result must be
the one of the steps run one after another, and must not depend on how many threads BLAS has."""

from __future__ import annotations

import dataclasses

import pytest
from threadpoolctl import threadpool_limits

from conftest import dataset
from segkit import config, pipeline
from segkit.models.cluster_validation import null_plan

CFG = config.load(None, use_env=False)


@pytest.fixture(scope="module")
def book():
    return pipeline.run(str(dataset("online_retail_non_uk.csv")), CFG, cluster=False)


def _summary(result) -> dict:
    return {"clusters": result.clusters.summary(), "validation": result.validation.summary(),
            "clv": result.clv.summary(), "customers": result.customers.to_dicts()}


@pytest.fixture(scope="module")
def together(book):
    with threadpool_limits(limits=2, user_api="blas"):  # segment's BLAS setting is its own
        return pipeline.add_models(book, lambda _step: None)


def test_models_side_by_side_equal_the_steps_in_turn_whatever_blas_threads(book, together):
    quiet = lambda _step: None  # noqa: E731
    with threadpool_limits(limits=1, user_api="blas"):
        in_turn = pipeline.add_validation(pipeline.add_clv(pipeline.add_clusters(book, quiet)), quiet)
    assert _summary(together) == _summary(in_turn)
    assert together.validation.evidence.verdict.code in ("distinct", "inconclusive", "none")


def test_the_plan_predicts_the_tested_k_range_and_a_fixed_k(book, together):
    plan = null_plan(book.customers, CFG)
    assert plan is not None and plan.ks == together.validation.evidence.ks
    fixed = dataclasses.replace(CFG, k=11)
    assert null_plan(book.customers, fixed).ks == tuple(range(2, 12))
