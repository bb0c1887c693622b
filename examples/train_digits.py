"""Train an MLP and a small CNN on scikit-learn's 8x8 handwritten digits.

This is an ordinary PyTorch training script with ``import rtorch as torch``:
a Dataset and DataLoader, ``nn`` modules, a loss, an optimizer and a
learning-rate scheduler, a progress bar per epoch and a summary at the end.

The digits (1,797 images of 8x8 pixels, ten classes) ship inside the
scikit-learn package, so nothing is downloaded at run time.

Run it with ``python examples/train_digits.py`` (``bash .ci/demo`` installs
scikit-learn and runs it after the tour in ``examples/demo.py``).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import rtorch as torch
from rtorch import nn
from rtorch.nn import functional as F
from rtorch.utils.data import DataLoader, TensorDataset


def load_digits_split(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """The digits as float images in [0, 1], split 80/20 per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cut = int(round(0.8 * len(idx)))
        train_idx += list(idx[:cut])
        test_idx += list(idx[cut:])
    train_idx, test_idx = np.array(train_idx), np.array(test_idx)

    def dataset(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))

    return dataset(train_idx), dataset(test_idx)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)  # 32 x 8 x 8
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)  # 64 x 8 x 8 -> pool 4 x 4
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = self.dropout(torch.flatten(x, 1))
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


def progress(epoch: int, epochs: int, done: int, total: int, loss: float) -> None:
    """One line per epoch, redrawn in place: ``epoch 3/20 [#####.....] loss 0.41``."""
    if done != total and not sys.stdout.isatty():
        return  # a log file gets the finished line only
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    sys.stdout.write(
        f"\r  epoch {epoch:2d}/{epochs} [{bar}] {done:4d}/{total} loss {loss:.4f}{end}"
    )
    sys.stdout.flush()


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(dim=1) == y).sum())
        total += len(y)
    return correct / total


def train(
    name: str, model: nn.Module, train_set: TensorDataset, test_set: TensorDataset, epochs: int
) -> dict[str, float]:
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=256)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"\n{name}: {n_params:,} parameters, {len(train_set)} train / {len(test_set)} test images"
    )
    epoch_times = []
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        running, seen = 0.0, 0
        for step, (x, y) in enumerate(train_loader, 1):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(y)
            seen += len(y)
            progress(epoch, epochs, step, len(train_loader), running / seen)
        scheduler.step()
        epoch_times.append(time.perf_counter() - start)
    acc = accuracy(model, test_loader)
    mean_epoch = sum(epoch_times) / len(epoch_times)
    print(f"  held-out accuracy {acc:.2%}, {mean_epoch * 1000:.0f} ms per epoch")
    return {"accuracy": acc, "epoch_s": mean_epoch}


def main() -> int:
    torch.manual_seed(0)
    train_set, test_set = load_digits_split()
    results = {
        "MLP": train("MLP", MLP(), train_set, test_set, epochs=20),
        "CNN": train("CNN", CNN(), train_set, test_set, epochs=15),
    }
    print("\nsummary")
    for name, r in results.items():
        print(f"  {name}: accuracy {r['accuracy']:.2%}, {r['epoch_s'] * 1000:.0f} ms per epoch")
    # The CNN is the one that must learn the task well; fail loudly if not.
    return 0 if results["CNN"]["accuracy"] > 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
