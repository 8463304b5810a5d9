"""Fixtures of the ACMKD tests."""
import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """2 shared cores: torch's default of 2 intra-op threads is ~10x slower under load than 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
