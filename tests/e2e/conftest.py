"""End-to-end tests reuse the integration fixtures (small world, trained champion)."""

from tests.integration.conftest import champion_state, small_world, trained_bundle

__all__ = ["champion_state", "small_world", "trained_bundle"]
