"""Shared pytest configuration: hypothesis profiles.

``CI=1 pytest`` runs the property tests derandomised (the same examples on
every run), so a CI failure reproduces locally with the same command.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
