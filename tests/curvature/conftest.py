import pytest


@pytest.fixture(params=["mse", "logistic", "cross_entropy"])
def loss_type(request):
    return request.param
