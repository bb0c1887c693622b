"""nn.utils: gradient clipping, parameter vectors, parametrizations (weight
and spectral norm, both forms), sequence packing and padding; EmbeddingBag."""

import math
import warnings

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck
from rtorch.nn.utils import parametrizations, parametrize
from rtorch.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

# ---------------------------------------------------------------- clip_grad


def _with_grads(rng, shapes):
    params = []
    for shape in shapes:
        p = rtorch.zeros(shape, dtype=rtorch.float64, requires_grad=True)
        p.grad = rtorch.tensor(rng.standard_normal(shape))
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_against_numpy(norm_type, max_norm):
    rng = np.random.default_rng(0)
    params = _with_grads(rng, [(3, 4), (5,), (2, 2, 2)])
    grads = [p.grad.numpy().copy() for p in params]
    flat = np.concatenate([g.ravel() for g in grads])
    want = (
        np.abs(flat).max()
        if norm_type == math.inf
        else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    )
    total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert isinstance(total, rtorch.Tensor) and total.dim() == 0
    np.testing.assert_allclose(float(total), want, rtol=1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)


def test_clip_grad_norm_edge_cases():
    assert float(nn.utils.clip_grad_norm_([rtorch.zeros(2, requires_grad=True)], 1.0)) == 0.0
    p = rtorch.zeros(2, requires_grad=True)
    p.grad = rtorch.tensor([math.inf, 1.0])
    with pytest.raises(
        RuntimeError,
        match="The total norm of order 2.0 for gradients from `parameters` is non-finite",
    ):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    single = rtorch.zeros(2, requires_grad=True)
    single.grad = rtorch.tensor([3.0, 4.0])
    assert float(nn.utils.clip_grad_norm_(single, 1.0, foreach=True)) == 5.0
    np.testing.assert_allclose(single.grad.numpy(), [0.6, 0.8], rtol=1e-5)


def test_clip_grad_value():
    rng = np.random.default_rng(1)
    params = _with_grads(rng, [(4, 3), (6,)])
    grads = [p.grad.numpy().copy() for p in params]
    assert nn.utils.clip_grad_value_(params, 0.5) is None
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.5, 0.5))


def test_parameters_vector_round_trip():
    m = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(m.parameters())
    want = np.concatenate([m.weight.detach().numpy().ravel(), m.bias.detach().numpy()])
    np.testing.assert_array_equal(vec.detach().numpy(), want)
    nn.utils.vector_to_parameters(rtorch.arange(8.0), m.parameters())
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.bias.detach().numpy(), [6.0, 7.0])
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        nn.utils.vector_to_parameters([1.0], m.parameters())


# ---------------------------------------------------------------- parametrize


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Scale(nn.Module):
    def forward(self, X):
        return X * 2

    def right_inverse(self, X):
        return X / 2


def test_register_parametrization_recomputes_and_routes_gradients():
    m = nn.Linear(3, 3)
    w0 = m.weight.detach().numpy().copy()
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear"
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    original = m.parametrizations.weight.original
    np.testing.assert_array_equal(original.detach().numpy(), w0)
    w = m.weight.detach().numpy()
    np.testing.assert_array_equal(w, np.triu(w0) + np.triu(w0, 1).T)
    # Recomputed on access: changing the original changes the weight.
    with rtorch.no_grad():
        original.fill_(1.0)
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones((3, 3)))
    m(rtorch.ones(1, 3)).sum().backward()
    # d/dX sum(triu(X) + triu(X,1)^T): 1 on the diagonal, 2 above, 0 below.
    np.testing.assert_array_equal(
        original.grad.numpy(), np.triu(np.ones((3, 3))) + np.triu(np.ones((3, 3)), 1)
    )
    assert [k for k in m.state_dict()] == ["bias", "parametrizations.weight.original"]
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones((3, 3)))


def test_right_inverse_assignment_chaining_and_cached():
    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Scale())
    w0 = m.weight.detach().numpy().copy()
    # right_inverse ran at registration: the weight is unchanged, original is half of it.
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(), w0 / 2)
    m.weight = rtorch.ones(2, 2)
    np.testing.assert_allclose(
        m.parametrizations.weight.original.detach().numpy(), 0.5 * np.ones((2, 2))
    )
    np.testing.assert_allclose(m.weight.detach().numpy(), np.ones((2, 2)))
    parametrize.register_parametrization(m, "weight", Scale())
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * np.ones((2, 2)))
    with parametrize.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(m.weight.detach().numpy(), 0.5 * np.ones((2, 2)))


def test_parametrize_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(
        ValueError,
        match="does not have a parameter, a buffer, or a parametrized element with name 'nope'",
    ):
        parametrize.register_parametrization(m, "nope", Symmetric())
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(m, "weight")

    class Shrink(nn.Module):
        def forward(self, X):
            return X[0]

    with pytest.raises(ValueError, match="may not change the shape of the tensor"):
        parametrize.register_parametrization(m, "weight", Shrink())


def test_weight_norm_parametrization():
    rtorch.manual_seed(0)
    m = parametrizations.weight_norm(nn.Linear(4, 3).double())
    g = m.parametrizations.weight.original0
    v = m.parametrizations.weight.original1
    assert g.shape == (3, 1) and v.shape == (3, 4)
    vn = v.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy()[:, 0], np.linalg.norm(vn, axis=1))
    with rtorch.no_grad():
        g.mul_(2.0)
    want = 2 * vn
    np.testing.assert_allclose(m.weight.detach().numpy(), want, rtol=1e-12)
    m(rtorch.ones(2, 4, dtype=rtorch.float64)).sum().backward()
    assert g.grad is not None and v.grad is not None
    # The direction's gradient is orthogonal to the direction (scale invariance).
    np.testing.assert_allclose((v.grad.numpy() * vn).sum(axis=1), 0, atol=1e-12)
    assert gradcheck(
        lambda g, v: g * v / v.norm(dim=1, keepdim=True),
        (g.detach().requires_grad_(), v.detach().requires_grad_()),
    )
    whole = parametrizations.weight_norm(nn.Linear(4, 3), dim=None)
    assert whole.parametrizations.weight.original0.dim() == 0


def test_weight_norm_hook_form_and_state_dict_compat():
    m = nn.Linear(4, 3).double()
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(m)
    assert sorted(n for n, _ in m.named_parameters()) == ["bias", "weight_g", "weight_v"]
    with rtorch.no_grad():
        m.weight_g.fill_(1.0)
    m(rtorch.ones(1, 4, dtype=rtorch.float64))  # the pre-hook recomputes the weight
    np.testing.assert_allclose(np.linalg.norm(m.weight.detach().numpy(), axis=1), np.ones(3))
    m(rtorch.ones(1, 4, dtype=rtorch.float64)).sum().backward()
    assert m.weight_g.grad is not None and m.weight_v.grad is not None
    with pytest.raises(
        RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"
    ):
        with pytest.warns(FutureWarning):
            nn.utils.weight_norm(m)
    # An old-style state dict loads into the parametrized form.
    new = parametrizations.weight_norm(nn.Linear(4, 3).double())
    new.load_state_dict(m.state_dict())
    np.testing.assert_allclose(new.weight.detach().numpy(), m.weight.detach().numpy(), rtol=1e-12)
    nn.utils.remove_weight_norm(m)
    assert sorted(n for n, _ in m.named_parameters()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
        nn.utils.remove_weight_norm(m)


@pytest.mark.parametrize("hook_form", [False, True])
def test_spectral_norm_normalises_largest_singular_value(hook_form):
    rtorch.manual_seed(0)
    m = nn.Linear(6, 5).double()
    if hook_form:
        nn.utils.spectral_norm(m, n_power_iterations=30)
    else:
        parametrizations.spectral_norm(m, n_power_iterations=30)
    m(rtorch.ones(1, 6, dtype=rtorch.float64))
    s = np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)
    np.testing.assert_allclose(s[0], 1.0, rtol=1e-6)
    m(rtorch.ones(1, 6, dtype=rtorch.float64)).sum().backward()
    orig = m.weight_orig if hook_form else m.parametrizations.weight.original
    assert orig.grad is not None and orig.grad.shape == (5, 6)
    if hook_form:
        nn.utils.remove_spectral_norm(m)
        assert sorted(m.state_dict()) == ["bias", "weight"]


# ---------------------------------------------------------------- packing


def test_pack_pad_round_trips():
    seqs = [rtorch.tensor([1.0, 2.0, 3.0]), rtorch.tensor([4.0]), rtorch.tensor([5.0, 6.0])]
    padded = pad_sequence(seqs)
    np.testing.assert_array_equal(padded.numpy(), [[1, 4, 5], [2, 0, 6], [3, 0, 0]])
    left = pad_sequence(seqs, batch_first=True, padding_value=-1.0, padding_side="left")
    np.testing.assert_array_equal(left.numpy(), [[1, 2, 3], [-1, -1, 4], [-1, 5, 6]])
    with pytest.raises(
        ValueError, match="Expected padding_side to be one of left or right, but got middle."
    ):
        pad_sequence(seqs, padding_side="middle")
    packed = pack_sequence(seqs, enforce_sorted=False)
    assert isinstance(packed, PackedSequence) and isinstance(packed, tuple)
    np.testing.assert_array_equal(packed.data.numpy(), [1, 5, 4, 2, 6, 3])
    assert packed.batch_sizes.tolist() == [3, 2, 1]
    assert packed.sorted_indices.tolist() == [0, 2, 1] and packed.unsorted_indices.tolist() == [
        0,
        2,
        1,
    ]
    out, lengths = pad_packed_sequence(packed, batch_first=True, padding_value=9.0, total_length=4)
    np.testing.assert_array_equal(out.numpy(), [[1, 2, 3, 9], [4, 9, 9, 9], [5, 6, 9, 9]])
    assert lengths.tolist() == [3, 1, 2]
    for a, b in zip(unpack_sequence(packed), seqs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(unpad_sequence(padded, lengths), seqs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(
        ValueError, match="Expected total_length to be at least the length of the longest sequence"
    ):
        pad_packed_sequence(packed, total_length=2)
    assert not packed.is_cuda
    assert packed.to(rtorch.float64).data.dtype == rtorch.float64
    assert packed.double().sorted_indices.tolist() == [0, 2, 1]


def test_pack_padded_errors_and_sorted_input():
    x = rtorch.arange(12.0).reshape(3, 2, 2)  # (T, B, F)
    with pytest.raises(
        RuntimeError,
        match="`lengths` array must be sorted in decreasing order when `enforce_sorted` is True",
    ):
        pack_padded_sequence(x, [1, 3])
    packed = pack_padded_sequence(x, rtorch.tensor([3, 1]))
    assert packed.sorted_indices is None and packed.unsorted_indices is None
    np.testing.assert_array_equal(packed.data.numpy(), x.numpy()[[0, 0, 1, 2], [0, 1, 0, 0]])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        pack_padded_sequence(x, [3, 0])
    with pytest.raises(
        RuntimeError,
        match=r"Expected `len\(lengths\)` to be equal to batch_size, but got 3 \(batch_size=2\)",
    ):
        pack_padded_sequence(x, [3, 2, 1])


def test_pack_padded_gradient_flows_to_valid_positions():
    x = rtorch.randn(3, 2, 2, dtype=rtorch.float64, requires_grad=True)
    packed = pack_padded_sequence(x, [1, 3], enforce_sorted=False)
    padded, _ = pad_packed_sequence(packed)
    padded.sum().backward()
    mask = np.zeros((3, 2, 2))
    mask[:1, 0] = 1
    mask[:, 1] = 1
    np.testing.assert_array_equal(x.grad.numpy(), mask)


# ---------------------------------------------------------------- EmbeddingBag


def np_bags(weight, idx, starts, ends, mode, psw=None, padding_idx=None):
    out = np.zeros((len(starts), weight.shape[1]))
    for b, (s, e) in enumerate(zip(starts, ends, strict=True)):
        rows = [
            (weight[idx[j]] * (1 if psw is None else psw[j]))
            for j in range(s, e)
            if idx[j] != padding_idx
        ]
        if not rows:
            continue
        rows = np.stack(rows)
        out[b] = rows.sum(0) if mode == "sum" else rows.mean(0) if mode == "mean" else rows.max(0)
    return out


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag_against_numpy(mode, padding_idx):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((10, 3))
    idx = [1, 2, 4, 5, 4, 3, 2, 9, 4]
    offsets = [0, 4, 4, 7]
    starts, ends = offsets, offsets[1:] + [len(idx)]
    out = F.embedding_bag(
        rtorch.tensor(idx),
        rtorch.tensor(w),
        rtorch.tensor(offsets),
        mode=mode,
        padding_idx=padding_idx,
    )
    np.testing.assert_allclose(
        out.numpy(), np_bags(w, idx, starts, ends, mode, padding_idx=padding_idx), atol=1e-12
    )
    # include_last_offset: the last offset ends the last bag.
    out = F.embedding_bag(
        rtorch.tensor(idx),
        rtorch.tensor(w),
        rtorch.tensor([0, 4, 6]),
        mode=mode,
        include_last_offset=True,
    )
    np.testing.assert_allclose(out.numpy(), np_bags(w, idx, [0, 4], [4, 6], mode), atol=1e-12)
    # 2-D input: fixed-size bags.
    idx2 = np.array([[1, 2, 3], [4, 4, 0]])
    out = F.embedding_bag(rtorch.tensor(idx2), rtorch.tensor(w), mode=mode)
    np.testing.assert_allclose(
        out.numpy(), np_bags(w, idx2.ravel(), [0, 3], [3, 6], mode), atol=1e-12
    )


def test_embedding_bag_per_sample_weights_and_gradcheck():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 2))
    idx, offsets = [0, 2, 2, 5, 1], [0, 2]
    psw = rng.standard_normal(5)
    out = F.embedding_bag(rtorch.tensor(idx), rtorch.tensor(w), rtorch.tensor(offsets), mode="sum",
                          per_sample_weights=rtorch.tensor(psw))  # fmt: skip
    np.testing.assert_allclose(out.numpy(), np_bags(w, idx, [0, 2], [2, 5], "sum", psw), atol=1e-12)
    W = rtorch.tensor(w, requires_grad=True)
    P = rtorch.tensor(psw, requires_grad=True)
    for mode in ("sum", "mean", "max"):
        assert gradcheck(
            lambda W, mode=mode: F.embedding_bag(
                rtorch.tensor(idx), W, rtorch.tensor(offsets), mode=mode, padding_idx=5
            ),
            (W,),
        )
    assert gradcheck(
        lambda W, P: F.embedding_bag(
            rtorch.tensor(idx), W, rtorch.tensor(offsets), mode="sum", per_sample_weights=P
        ),
        (W, P),
    )


def test_embedding_bag_module_and_errors():
    rtorch.manual_seed(0)
    bag = nn.EmbeddingBag(10, 3, mode="sum", padding_idx=2)
    assert repr(bag) == "EmbeddingBag(10, 3, mode='sum', padding_idx=2)"
    assert bag.weight[2].abs().sum().item() == 0
    out = bag(rtorch.tensor([[1, 2], [3, 4]]))
    w = bag.weight.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), [w[1], w[3] + w[4]], rtol=1e-6)
    pre = nn.EmbeddingBag.from_pretrained(rtorch.ones(3, 2), mode="max")
    assert not pre.weight.requires_grad and repr(pre) == "EmbeddingBag(3, 2, mode='max')"
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        bag(rtorch.tensor([1, 2]))
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        bag(rtorch.tensor([[1, 2]]), rtorch.tensor([0]))
    with pytest.raises(ValueError, match="offsets\\[0\\] has to be 0"):
        bag(rtorch.tensor([1, 2]), rtorch.tensor([1]))
    with pytest.raises(
        NotImplementedError, match="per_sample_weights is only supported for mode='sum'"
    ):
        F.embedding_bag(
            rtorch.tensor([1]),
            rtorch.ones(3, 2),
            rtorch.tensor([0]),
            per_sample_weights=rtorch.ones(1),
        )
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        F.embedding_bag(rtorch.tensor([1]), rtorch.ones(3, 2), rtorch.tensor([0]), mode="min")
    with pytest.raises(AssertionError, match="padding_idx must be within num_embeddings"):
        nn.EmbeddingBag(3, 2, padding_idx=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bag(rtorch.tensor([1, 2]), rtorch.tensor([0]))


def test_embedding_bag_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 3))
    idx, offsets = [1, 2, 7, 5, 4, 3], [0, 2, 2, 5]
    for mode in ("sum", "mean", "max"):
        want = torch.nn.functional.embedding_bag(
            torch.tensor(idx), torch.tensor(w), torch.tensor(offsets), mode=mode, padding_idx=7
        )
        got = F.embedding_bag(
            rtorch.tensor(idx), rtorch.tensor(w), rtorch.tensor(offsets), mode=mode, padding_idx=7
        )
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)


# ---------------------------------------------------------------- orthogonal


def _expm_numpy(A):
    w, V = np.linalg.eig(A)
    return (V @ np.diag(np.exp(w)) @ np.linalg.inv(V)).real


def test_private_matrix_exp_and_householder_product_against_numpy():
    from rtorch.nn.utils.parametrizations import _householder_product, _matrix_exp

    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 4, 4)) * 2.0  # norm > 1: scaling and squaring runs
    got = _matrix_exp(rtorch.tensor(A)).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], _expm_numpy(A[b]), rtol=1e-10, atol=1e-10)
    V, tau = rng.standard_normal((5, 3)), rng.random(3)
    want = np.eye(5)
    for i in range(3):
        v = np.where(np.arange(5) > i, V[:, i], 0.0)
        v[i] = 1.0
        want = want @ (np.eye(5) - tau[i] * np.outer(v, v))
    got = _householder_product(rtorch.tensor(V), rtorch.tensor(tau)).numpy()
    np.testing.assert_allclose(got, want[:, :3], atol=1e-12)


@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("use_trivialization", [True, False])
def test_orthogonal_parametrization(orthogonal_map, shape, use_trivialization):
    rtorch.manual_seed(0)
    m = nn.Linear(shape[1], shape[0]).double()
    parametrizations.orthogonal(
        m, orthogonal_map=orthogonal_map, use_trivialization=use_trivialization
    )
    Q = m.weight.detach().numpy()
    Qt = Q if shape[0] >= shape[1] else Q.T
    np.testing.assert_allclose(Qt.T @ Qt, np.eye(Qt.shape[1]), atol=1e-12)
    # Gradients reach the original and a step keeps the weight orthogonal.
    m(rtorch.ones(2, shape[1], dtype=rtorch.float64)).pow(2).sum().backward()
    original = m.parametrizations.weight.original
    assert original.grad is not None and original.grad.abs().sum().item() > 0
    with rtorch.no_grad():
        original.sub_(0.1 * original.grad)
    Qt = m.weight.detach().numpy() if shape[0] >= shape[1] else m.weight.detach().numpy().T
    np.testing.assert_allclose(Qt.T @ Qt, np.eye(Qt.shape[1]), atol=1e-12)
    assert not np.allclose(m.weight.detach().numpy(), Q)
    # Assigning an orthogonal matrix sets the weight to it (right_inverse).
    if use_trivialization or orthogonal_map == "householder":
        target = np.linalg.qr(np.random.default_rng(1).standard_normal((max(shape), min(shape))))[0]
        target = target if shape[0] >= shape[1] else target.T
        m.weight = rtorch.tensor(target)
        np.testing.assert_allclose(m.weight.detach().numpy(), target, atol=1e-12)
    else:
        with pytest.raises(
            NotImplementedError, match="It is not possible to assign to the matrix exponential"
        ):
            m.weight = rtorch.tensor(Q)


def test_orthogonal_errors():
    with pytest.raises(
        ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."
    ):
        parametrizations.orthogonal(nn.Linear(2, 2), "bias")
    with pytest.raises(
        ValueError,
        match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: qr',
    ):
        parametrizations.orthogonal(nn.Linear(2, 2), orthogonal_map="qr")
    m = parametrizations.orthogonal(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices of shape"):
        m.weight = rtorch.eye(2)


def test_orthogonal_matches_pytorch():
    torch = pytest.importorskip("torch")
    for orthogonal_map in ("matrix_exp", "cayley", "householder"):
        theirs = torch.nn.Linear(3, 5).double()
        mine = nn.Linear(3, 5).double()
        mine.weight.data = rtorch.tensor(theirs.weight.detach().numpy())
        torch.nn.utils.parametrizations.orthogonal(
            theirs, orthogonal_map=orthogonal_map, use_trivialization=False
        )
        parametrizations.orthogonal(mine, orthogonal_map=orthogonal_map, use_trivialization=False)
        np.testing.assert_allclose(
            mine.weight.detach().numpy(), theirs.weight.detach().numpy(), atol=1e-12
        )
        theirs.weight.pow(3).sum().backward()
        mine.weight.pow(3).sum().backward()
        np.testing.assert_allclose(
            mine.parametrizations.weight.original.grad.numpy(),
            theirs.parametrizations.weight.original.grad.numpy(),
            atol=1e-10,
        )


# ---------------------------------------------------------------- fusion and exports


def test_fuse_linear_bn_eval_and_conv_weights():
    rtorch.manual_seed(0)
    lin, bn = nn.Linear(3, 4).double().eval(), nn.BatchNorm1d(4).double().eval()
    with rtorch.no_grad():
        bn.running_mean.copy_(rtorch.randn(4, dtype=rtorch.float64))
        bn.running_var.copy_(rtorch.rand(4, dtype=rtorch.float64) + 0.5)
        bn.weight.copy_(rtorch.randn(4, dtype=rtorch.float64))
        bn.bias.copy_(rtorch.randn(4, dtype=rtorch.float64))
    x = rtorch.randn(5, 3, dtype=rtorch.float64)
    fused = nn.utils.fuse_linear_bn_eval(lin, bn)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(lin(x)).detach().numpy(), atol=1e-12)
    assert isinstance(fused.weight, nn.Parameter) and fused.weight.is_leaf and fused is not lin
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        nn.utils.fuse_linear_bn_eval(lin.train(), bn)
    # Convolution weights (out, in, k): per-output-channel scale, as NumPy.
    w = np.random.default_rng(0).standard_normal((2, 3, 4))
    rm, rv, g, b = (
        np.array([0.1, -0.2]),
        np.array([1.5, 0.7]),
        np.array([2.0, -1.0]),
        np.array([0.3, 0.4]),
    )
    fw, fb = nn.utils.fuse_conv_bn_weights(*(rtorch.tensor(a) for a in (w, np.zeros(2), rm, rv)), 1e-5,
                                           rtorch.tensor(g), rtorch.tensor(b))  # fmt: skip
    scale = g / np.sqrt(rv + 1e-5)
    np.testing.assert_allclose(fw.detach().numpy(), w * scale[:, None, None], rtol=1e-12)
    np.testing.assert_allclose(fb.detach().numpy(), (0 - rm) * scale + b, rtol=1e-12)
    tw, _ = nn.utils.fuse_conv_bn_weights(rtorch.tensor(w.transpose(1, 0, 2)), None, *(rtorch.tensor(a) for a in (rm, rv)),
                                          1e-5, rtorch.tensor(g), rtorch.tensor(b), transpose=True)  # fmt: skip
    np.testing.assert_allclose(
        tw.detach().numpy(), (w * scale[:, None, None]).transpose(1, 0, 2), rtol=1e-12
    )


def test_nn_utils_names_exist_in_pytorch():
    torch = pytest.importorskip("torch")
    for name in nn.utils.__all__:
        assert hasattr(torch.nn.utils, name), name
    for name in nn.utils.rnn.__all__:
        assert hasattr(torch.nn.utils.rnn, name), name
