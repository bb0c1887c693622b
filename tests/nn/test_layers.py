"""Layers and init: default initialisation, init distributions, norm/embedding/dropout
modules, activation and loss modules' repr and behaviour."""

import math

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.nn import init


def test_linear_default_init_bounds_and_forward():
    rtorch.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert w.min() >= -bound and w.max() <= bound
    assert b.min() >= -bound and b.max() <= bound
    # U(-a, a) has std a / sqrt(3).
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    x = rtorch.randn(5, 400)
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy() @ w.T + b, rtol=1e-4, atol=1e-5)
    assert nn.Linear(2, 3, bias=False).bias is None
    assert nn.Linear(2, 3, dtype=rtorch.float64).weight.dtype == rtorch.float64


def test_bilinear_shapes_and_repr():
    m = nn.Bilinear(2, 3, 4)
    assert m(rtorch.randn(5, 2), rtorch.randn(5, 3)).shape == (5, 4)
    assert repr(m) == "Bilinear(in1_features=2, in2_features=3, out_features=4, bias=True)"
    with pytest.raises(ValueError, match=r"in1_features must be > 0, but got \(in1_features=0\)"):
        nn.Bilinear(0, 3, 4)


def test_calculate_gain_and_errors():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope x not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def test_fan_in_and_out_and_dimension_errors():
    assert init._calculate_fan_in_and_fan_out(rtorch.empty(6, 4, 3, 3)) == (36, 54)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(rtorch.empty(3))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(rtorch.empty(3))
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        init.dirac_(rtorch.empty(3, 3))
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        init.orthogonal_(rtorch.empty(3))
    with pytest.raises(
        ValueError, match=r"Mode fan not supported, please use one of \['fan_in', 'fan_out'\]"
    ):
        init.kaiming_uniform_(rtorch.empty(3, 3), mode="fan")


def _stats(t):
    a = t.detach().numpy().ravel()
    return a.mean(), a.std(), a.min(), a.max()


@pytest.mark.parametrize(
    "fill,std,bound",
    [
        (
            lambda w: init.xavier_uniform_(w, gain=2.0),
            2 * math.sqrt(2 / 600),
            2 * math.sqrt(6 / 600),
        ),
        (lambda w: init.xavier_normal_(w), math.sqrt(2 / 600), None),
        (
            lambda w: init.kaiming_uniform_(w, nonlinearity="relu"),
            math.sqrt(2 / 200),
            math.sqrt(6 / 200),
        ),
        (
            lambda w: init.kaiming_normal_(w, a=0.1, mode="fan_out"),
            math.sqrt(2 / 1.01) / math.sqrt(400),
            None,
        ),
        (lambda w: init.normal_(w, 2.0, 0.5), 0.5, None),
        (lambda w: init.uniform_(w, -3, 1), 4 / math.sqrt(12), 3),
        (lambda w: init.trunc_normal_(w, std=1.0, a=-2, b=2), 0.8796, 2.0),
    ],
)
def test_init_distributions_have_expected_moments(fill, std, bound):
    rtorch.manual_seed(0)
    w = nn.Parameter(rtorch.empty(400, 200))
    assert fill(w) is w
    mean, s, lo, hi = _stats(w)
    assert abs(s - std) < 0.02 * std
    if bound is not None:
        assert lo >= -bound - 1e-6 and hi <= bound + 1e-6
    assert w.grad_fn is None and w.requires_grad


def test_constant_ones_zeros_eye_dirac():
    w = rtorch.empty(3, 4)
    assert init.constant_(w, 2.5).unique().tolist() == [2.5]
    assert init.ones_(w).sum().item() == 12 and init.zeros_(w).sum().item() == 0
    np.testing.assert_array_equal(init.eye_(w).numpy(), np.eye(3, 4))
    d = init.dirac_(rtorch.empty(4, 2, 3, 3), groups=2).numpy()
    assert d.sum() == 4 and d[0, 0, 1, 1] == 1 and d[1, 1, 1, 1] == 1 and d[2, 0, 1, 1] == 1


def test_orthogonal_rows_or_columns_are_orthonormal():
    rtorch.manual_seed(0)
    for shape in [(6, 3), (3, 6), (4, 2, 2)]:
        w = init.orthogonal_(rtorch.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
        small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(small, 4 * np.eye(small.shape[0]), atol=1e-5)


def test_sparse_zeroes_a_fraction_of_each_column():
    rtorch.manual_seed(0)
    w = init.sparse_(rtorch.empty(10, 6), sparsity=0.3).numpy()
    assert ((w == 0).sum(0) == 3).all()


def test_batchnorm_module_running_stats_momentum_none_and_eval():
    bn = nn.BatchNorm1d(3, momentum=None)
    x1, x2 = rtorch.randn(6, 3), rtorch.randn(6, 3) + 2
    bn(x1)
    bn(x2)
    assert bn.num_batches_tracked.item() == 2
    expected = (x1.numpy().mean(0) + x2.numpy().mean(0)) / 2
    np.testing.assert_allclose(bn.running_mean.numpy(), expected, rtol=1e-5, atol=1e-6)
    bn.eval()
    y = bn(x1).detach().numpy()
    ref = (x1.numpy() - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.item() == 2


def test_batchnorm_without_running_stats_and_dimension_check():
    bn = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert bn.running_mean is None and list(bn.state_dict()) == []
    y = bn(rtorch.randn(4, 2, 3, 3)).numpy()
    np.testing.assert_allclose(y.mean((0, 2, 3)), 0, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(2)(rtorch.randn(2, 2, 2))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(2)(rtorch.randn(2, 2, 2, 2))


def test_batchnorm_gradients_flow_to_affine_parameters():
    bn = nn.BatchNorm1d(3)
    (bn(rtorch.randn(5, 3)) * rtorch.arange(3.0)).sum().backward()
    np.testing.assert_allclose(bn.weight.grad.numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(bn.bias.grad.numpy(), [0, 5, 10], rtol=1e-6)


def test_layernorm_and_groupnorm_modules():
    ln = nn.LayerNorm([2, 3])
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    y = ln(rtorch.randn(4, 2, 3)).detach().numpy()
    np.testing.assert_allclose(y.reshape(4, -1).mean(1), 0, atol=1e-6)
    assert repr(nn.LayerNorm(3, elementwise_affine=False)) == (
        "LayerNorm((3,), eps=1e-05, elementwise_affine=False, bias=False)"
    )
    gn = nn.GroupNorm(2, 4)
    assert gn(rtorch.randn(2, 4, 5)).shape == (2, 4, 5)
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        nn.GroupNorm(3, 4)


def test_embedding_module_padding_row_zero_and_from_pretrained():
    emb = nn.Embedding(10, 3, padding_idx=-1)
    assert emb.padding_idx == 9 and emb.weight[9].abs().sum().item() == 0
    out = emb(rtorch.tensor([[1, 9]]))
    out.sum().backward()
    assert emb.weight.grad[9].abs().sum().item() == 0 and emb.weight.grad[1].sum().item() == 3
    pre = nn.Embedding.from_pretrained(rtorch.eye(3), freeze=False)
    assert pre.weight.requires_grad and pre(rtorch.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]
    assert repr(nn.Embedding(5, 2, max_norm=1.0)) == "Embedding(5, 2, max_norm=1.0)"


def test_dropout_module_respects_training_flag():
    d = nn.Dropout(0.5)
    x = rtorch.ones(1000)
    assert (d(x) == 0).any()
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(-0.1)


ACTIVATION_REPRS = [
    (nn.ReLU(), "ReLU()"),
    (nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (nn.ReLU6(), "ReLU6()"),
    (nn.LeakyReLU(0.2, inplace=True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (nn.PReLU(3), "PReLU(num_parameters=3)"),
    (nn.ELU(), "ELU(alpha=1.0)"),
    (nn.SELU(inplace=True), "SELU(inplace=True)"),
    (nn.CELU(0.5), "CELU(alpha=0.5)"),
    (nn.GELU("tanh"), "GELU(approximate='tanh')"),
    (nn.SiLU(), "SiLU()"),
    (nn.Mish(), "Mish()"),
    (nn.Sigmoid(), "Sigmoid()"),
    (nn.Tanh(), "Tanh()"),
    (nn.Softmax(dim=1), "Softmax(dim=1)"),
    (nn.LogSoftmax(0), "LogSoftmax(dim=0)"),
    (nn.Softmin(-1), "Softmin(dim=-1)"),
    (nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"),
    (nn.Softsign(), "Softsign()"),
    (nn.Softshrink(), "Softshrink(0.5)"),
    (nn.Hardshrink(0.3), "Hardshrink(0.3)"),
    (nn.Tanhshrink(), "Tanhshrink()"),
    (nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"),
    (nn.Hardswish(), "Hardswish()"),
    (nn.Hardsigmoid(), "Hardsigmoid()"),
    (nn.Threshold(0.1, 20), "Threshold(threshold=0.1, value=20)"),
    (nn.GLU(), "GLU(dim=-1)"),
    (nn.LogSigmoid(), "LogSigmoid()"),
    (nn.Dropout2d(), "Dropout2d(p=0.5, inplace=False)"),
    (
        nn.BatchNorm1d(3, momentum=None),
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)",
    ),
    (nn.GroupNorm(2, 4), "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"),
    (nn.CrossEntropyLoss(), "CrossEntropyLoss()"),
]


@pytest.mark.parametrize("module,text", ACTIVATION_REPRS, ids=[t for _, t in ACTIVATION_REPRS])
def test_module_repr_is_pytorchs(module, text):
    assert repr(module) == text


ACT_MODULES = [
    (nn.ReLU(), F.relu),
    (nn.LeakyReLU(0.3), lambda x: F.leaky_relu(x, 0.3)),
    (nn.ELU(0.7), lambda x: F.elu(x, 0.7)),
    (nn.CELU(0.7), lambda x: F.celu(x, 0.7)),
    (nn.SELU(), F.selu),
    (nn.GELU(), F.gelu),
    (nn.Softplus(2, 10), lambda x: F.softplus(x, 2, 10)),
    (nn.Softmax(1), lambda x: F.softmax(x, 1)),
    (nn.Hardtanh(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5)),
    (nn.ReLU6(), lambda x: x.clamp(0, 6)),
    (nn.Threshold(0.2, -1.0), lambda x: F.threshold(x, 0.2, -1.0)),
    (nn.GLU(1), lambda x: F.glu(x, 1)),
    (nn.Softshrink(0.2), lambda x: F.softshrink(x, 0.2)),
]


@pytest.mark.parametrize("module,fn", ACT_MODULES, ids=[repr(m) for m, _ in ACT_MODULES])
def test_activation_module_calls_its_functional(module, fn):
    x = rtorch.randn(3, 4) * 4
    np.testing.assert_allclose(module(x).numpy(), fn(x).numpy(), rtol=1e-6)


def test_prelu_learns_its_slope():
    m = nn.PReLU()
    assert m.weight.item() == 0.25
    m(rtorch.tensor([-2.0, 3.0])).sum().backward()
    assert m.weight.grad.item() == -2.0


LOSSES = [
    (nn.L1Loss(reduction="sum"), lambda a, b: F.l1_loss(a, b, reduction="sum")),
    (nn.MSELoss(), F.mse_loss),
    (nn.SmoothL1Loss(beta=0.5), lambda a, b: F.smooth_l1_loss(a, b, beta=0.5)),
    (nn.HuberLoss(delta=0.5), lambda a, b: F.huber_loss(a, b, delta=0.5)),
    (nn.SoftMarginLoss(), lambda a, b: F.soft_margin_loss(a, b.sign())),
    (nn.KLDivLoss(reduction="batchmean"), lambda a, b: F.kl_div(a, b.exp(), reduction="batchmean")),
    (nn.PoissonNLLLoss(), F.poisson_nll_loss),
    (nn.BCEWithLogitsLoss(pos_weight=rtorch.tensor([2.0])), None),
    (nn.MultiLabelSoftMarginLoss(), None),
]


@pytest.mark.parametrize("module,fn", LOSSES, ids=[type(m).__name__ for m, _ in LOSSES])
def test_loss_module_matches_functional(module, fn):
    rtorch.manual_seed(0)
    a, b = rtorch.randn(4, 3), rtorch.randn(4, 3)
    if isinstance(module, nn.BCEWithLogitsLoss):
        b = (b > 0).float()
        ref = F.binary_cross_entropy_with_logits(a, b, pos_weight=rtorch.tensor([2.0]))
    elif isinstance(module, nn.MultiLabelSoftMarginLoss):
        b = (b > 0).float()
        ref = F.multilabel_soft_margin_loss(a, b)
    elif isinstance(module, (nn.SoftMarginLoss, nn.KLDivLoss)):
        ref = fn(a, b)
        b = b.sign() if isinstance(module, nn.SoftMarginLoss) else b.exp()
    else:
        ref = fn(a, b)
    np.testing.assert_allclose(module(a, b).numpy(), ref.numpy(), rtol=1e-6)


def test_weighted_losses_register_weight_buffers():
    w = rtorch.tensor([1.0, 2.0, 3.0])
    ce = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    assert list(ce.state_dict()) == ["weight"] and ce.weight is w
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    x, y = rtorch.randn(5, 3), rtorch.tensor([0, 1, 2, 2, 0])
    ref = F.cross_entropy(x, y, w, ignore_index=1, label_smoothing=0.1)
    np.testing.assert_allclose(ce(x, y).numpy(), ref.numpy(), rtol=1e-6)
    nll = nn.NLLLoss(reduction="none")
    assert nll(x.log_softmax(1), y).shape == (5,)


def test_legacy_size_average_and_reduce_map_to_reduction():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"


def test_margin_modules_and_errors():
    a, b, y = rtorch.randn(4), rtorch.randn(4), rtorch.tensor([1.0, -1.0, 1.0, -1.0])
    np.testing.assert_allclose(
        nn.MarginRankingLoss(0.2)(a, b, y).numpy(), F.margin_ranking_loss(a, b, y, 0.2).numpy()
    )
    np.testing.assert_allclose(
        nn.HingeEmbeddingLoss(0.5)(a, y).numpy(), F.hinge_embedding_loss(a, y, 0.5).numpy()
    )
    x1, x2 = rtorch.randn(4, 3), rtorch.randn(4, 3)
    np.testing.assert_allclose(
        nn.CosineEmbeddingLoss()(x1, x2, y).numpy(), F.cosine_embedding_loss(x1, x2, y).numpy()
    )
    np.testing.assert_allclose(
        nn.TripletMarginLoss(p=1)(x1, x2, -x1).numpy(),
        F.triplet_margin_loss(x1, x2, -x1, p=1).numpy(),
    )
    np.testing.assert_allclose(
        nn.GaussianNLLLoss()(x1, x2, rtorch.ones(4, 3)).numpy(),
        F.gaussian_nll_loss(x1, x2, rtorch.ones(4, 3)).numpy(),
    )
    t = rtorch.tensor([0, 1, 2, 0])
    np.testing.assert_allclose(
        nn.MultiMarginLoss(p=2)(x1, t).numpy(), F.multi_margin_loss(x1, t, p=2).numpy()
    )
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0"):
        nn.TripletMarginLoss(margin=0)


def test_training_a_small_network_reduces_the_loss():
    rtorch.manual_seed(0)
    x = rtorch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(
        nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2)
    )
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(60):
        loss = loss_fn(net(x), y)
        first = loss.item() if first is None else first
        net.zero_grad()
        loss.backward()
        with rtorch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    assert loss.item() < first / 3
