"""The API tests. Their shared helpers live in modules pytest does not collect, so pytest is asked to
rewrite the asserts in them as it does in test modules, keeping failures as informative."""

import pytest

pytest.register_assert_rewrite(
    "tests.api.grant_helpers",
    "tests.api.partner_keys.key_helpers",
    "tests.api.outlet_helpers",
    "tests.api.partner_world",
)
