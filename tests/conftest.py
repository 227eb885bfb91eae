"""Shared pytest setup: the `eafix` package is imported from the installed distribution.

Hypothesis (the property tests, tests/service/test_properties_*.py) runs under the `eafix` profile:
derandomized (the same examples on every run and machine, so CI never flakes on a new draw), a bounded
number of examples so the whole set stays well under a minute on two shared cores, no deadline (a shared
machine's pauses are not a property of the code) and no example database. `HYPOTHESIS_PROFILE=deep`
searches harder and at random when hunting bugs locally.

Tests marked `slow` (minutes each: the fault suite, failover, several replicas) are collected first, so
pytest-xdist starts them at once and the short ones fill the other worker meanwhile, instead of a long
one starting last and running alone (`.ci/run`'s budget).
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("eafix", derandomize=True, max_examples=60, deadline=None, database=None,
                          print_blob=True)
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "eafix"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow ones first, in order
