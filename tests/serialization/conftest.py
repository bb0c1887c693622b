"""Where PyTorch's fixtures are (the repo root's parent holds ``shared/``)."""

import pytest
from ckpt_util import FIXTURES


@pytest.fixture
def fixtures():
    if not FIXTURES.is_dir():
        pytest.skip(f"PyTorch fixtures not found at {FIXTURES}")
    return FIXTURES
