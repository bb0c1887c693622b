"""A tour of rtorch's foundation: creation, views, indexing, NumPy and DLPack.

rtorch speaks PyTorch's API, so the script imports it under PyTorch's name.
Run it with ``bash .ci/demo`` (builds first) or ``.venv/bin/python examples/demo.py``.
"""

import time

import numpy as np

import rtorch as torch


def heading(title: str) -> None:
    print(f"\n=== {title} ===")


def show(label: str, value: object) -> None:
    text = str(value)
    if "\n" in text or len(label) > 36:
        print(label)
        print("    " + text.replace("\n", "\n    "))
    else:
        print(f"{label:<36} {text}")


heading("Creation")
show("torch.tensor([[1, 2], [3, 4]])", torch.tensor([[1, 2], [3, 4]]))
show("torch.tensor([1.5, 2.0]).dtype", torch.tensor([1.5, 2.0]).dtype)
show("torch.zeros(2, 3)", torch.zeros(2, 3))
show("torch.arange(0, 10, 3)", torch.arange(0, 10, 3))
torch.manual_seed(0)
a = torch.rand(3)
torch.manual_seed(0)
b = torch.rand(3)
show("rand(3) after manual_seed(0)", a)
show("same seed, same numbers", a.tolist() == b.tolist())

heading("Views share storage")
t = torch.arange(12)
m = t.view(3, 4)
show("m = arange(12).view(3, 4)", m)
show("m.shape, m.stride()", (m.shape, m.stride()))
mt = m.transpose(0, 1)
show("m.transpose(0, 1).stride()", mt.stride())
show("... .is_contiguous()", mt.is_contiguous())
show("m.unsqueeze(0).shape", m.unsqueeze(0).shape)
row = torch.tensor([1, 2, 3]).unsqueeze(0).expand(2, 3)
show("tensor([1,2,3])[None].expand(2, 3)", row)
show("... .stride() (0 = broadcast)", row.stride())
mt[1, 0] = 100  # a write through the transposed view (m[0, 1] is t[1])...
show("... is seen by the base: t[1]", t[1])
show("same memory: data_ptr equal", m.data_ptr() == t.data_ptr())

heading("Indexing")
x = torch.arange(20).view(4, 5)
show("x = arange(20).view(4, 5)", x)
show("x[1, 2:5]", x[1, 2:5])
show("x[::2, -1]", x[::2, -1])
show("x[..., None].shape", x[..., None].shape)
show("x[tensor([3, 0])]  (rows)", x[torch.tensor([3, 0])])
show("x[[0, 3], [1, 4]]  (pairs)", x[[0, 3], [1, 4]])
mask = torch.tensor([True, False, False, True])
show("x[mask]", x[mask])
x[0] = 0
x[:, 4] = torch.tensor([-1, -2, -3, -4])
x[mask, 1] = 99
show("after x[0] = 0; x[:, 4] = ...; x[mask, 1] = 99", x)
try:
    x[4]
except IndexError as e:
    show("x[4] raises IndexError", e)

heading("NumPy round trip (shared memory)")
arr = np.arange(6, dtype=np.float32).reshape(2, 3)
ft = torch.from_numpy(arr)
arr[0, 0] = -7.0
show("from_numpy sees NumPy's write", ft[0, 0].item())
back = ft.numpy()
back[1, 2] = 42.0
show(".numpy() writes reach arr", arr[1, 2])
show("np.shares_memory(arr, back)", np.shares_memory(arr, back))
show("np.asarray(tensor) dtype", np.asarray(torch.ones(2, dtype=torch.int16)).dtype)

heading("DLPack with NumPy")
via_np = np.from_dlpack(ft)
show("np.from_dlpack(tensor)", via_np.tolist())
via_torch = torch.from_dlpack(arr)
via_torch[0, 1] = 5.0
show("from_dlpack(arr) writes reach arr", arr[0, 1])

heading("Arithmetic and dtype promotion")
i = torch.tensor([1, 2, 3])
f = torch.tensor([0.5, 0.25, 2.0])
show("int64 + int64", (i + i, (i + i).dtype))
show("int64 + float32", (i + f).dtype)
show("int64 * 2.5 (Python float)", (i * 2.5, (i * 2.5).dtype))
show("int64 / int64 (true division)", (i / i).dtype)
show(
    "float16 - float64",
    (torch.ones(2, dtype=torch.float16) - torch.ones(2, dtype=torch.float64)).dtype,
)
show("int32 * int64 0-d tensor", (torch.tensor([1], dtype=torch.int32) * torch.tensor(3)).dtype)
col = torch.tensor([[10.0], [20.0]])
show("broadcast (2,1) + (3,)", col + f)

heading("Math: vectorised kernels, comparisons, softmax")
x = torch.linspace(-2, 2, 5)
show("x", x)
show("x.exp()", x.exp())
show("torch.tanh(x)", torch.tanh(x))
show("x.clamp(min=0)", x.clamp(min=0))
show("(x > 0) & (x < 2)", (x > 0) & (x < 2))
show("torch.where(x > 0, x, 0.0)", torch.where(x > 0, x, 0.0))
logits = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
show("logits.softmax(-1)", logits.softmax(-1))
big = torch.rand(4_000_000)
start = time.perf_counter()
_ = big.exp()
show("exp over 4M floats", f"{(time.perf_counter() - start) * 1e3:.1f} ms")

heading("Autograd: fit y = 3x - 1 by gradient descent")
torch.manual_seed(0)
xs = torch.linspace(-1, 1, 64).unsqueeze(1)
ys = 3 * xs - 1 + 0.05 * torch.randn(64, 1)
w = torch.zeros(1, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for _ in range(200):
    loss = ((xs @ w + b - ys) ** 2).mean()
    w.grad = None
    b.grad = None
    loss.backward()
    with torch.no_grad():
        w -= 0.5 * w.grad
        b -= 0.5 * b.grad
show("loss.grad_fn", loss.grad_fn)
show("w, b after 200 steps", f"{w.item():.3f}, {b.item():.3f}")
t = torch.tensor(2.0, requires_grad=True)
(d1,) = torch.autograd.grad(t**3, t, create_graph=True)
(d2,) = torch.autograd.grad(d1, t)
show("d/dt t^3, d2/dt2 at t=2", f"{d1.item():.1f}, {d2.item():.1f}")

heading("Errors are PyTorch's")
try:
    torch.zeros(2, device="cuda")
except RuntimeError as e:
    show("zeros(device='cuda')", f"RuntimeError: {str(e)[:60]}...")
try:
    torch.empty(10**13)
except torch.OutOfMemoryError as e:
    show("empty(10**13)", f"OutOfMemoryError: {e}")
