"""Distil a small ViT into a smaller CNN on scikit-learn's bundled 8x8 digits (CPU, seconds).

The teacher is trained here on the training split; the student learns from the teacher's logits with the
registry's ``logits_kl`` loss (temperature, plus hard-label cross-entropy) through the same training loop as the
text pipeline (:func:`edgedistill.distill.trainer.train_batches`). Prints teacher and student accuracy on a
held-out split. ``--image-folder DIR`` reads ``DIR/<class>/<image>`` instead of the bundled digits.

    python examples/vision_digits.py            # full run
    python examples/vision_digits.py --quick    # the reduced run the tests use
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgedistill.config import DistillConfig, LossSpec
from edgedistill.distill.trainer import train_batches


class TinyViT(nn.Module):
    """Patches of 2x2 pixels → tokens, a class token, a pre-norm transformer encoder, a linear head."""

    def __init__(self, classes: int, size: int = 8, channels: int = 1, patch: int = 2, dim: int = 48,
                 layers: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.embed(pixel_values).flatten(2).transpose(1, 2)  # (B, P, D)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
        return self.head(self.encoder(x)[:, 0])  # (B, classes)


class SmallCNN(nn.Module):
    def __init__(self, classes: int, channels: int = 1, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width * 2, 3, padding=1),
            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.LazyLinear(classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixel_values))


def load_data(image_folder: Path | None, seed: int) -> tuple[np.ndarray, ...]:
    """(x_train, x_test, y_train, y_test): images (N, C, 8, 8) in [0, 1], a stratified 75/25 split."""
    from sklearn.model_selection import train_test_split

    if image_folder is not None:
        from edgedistill.data.images import read_image_folder

        data = read_image_folder(image_folder, size=(8, 8), grey=True)
        x, y = data.images, data.labels
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = (digits.images[:, None] / 16.0).astype(np.float32), digits.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y))


def fit_teacher(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    """Plain supervised training (cross-entropy, AdamW, cosine decay)."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return model.eval()(torch.from_numpy(x)).numpy()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((logits(model, x).argmax(1) == y).mean())


def distil(student: nn.Module, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray, steps: int,
           seed: int, work_dir: Path) -> list[float]:
    """Logit KD (T=4) mixed half-and-half with hard labels, through the pipeline's training loop."""
    cfg = DistillConfig(losses=[LossSpec(name="logits_kl", temperature=4.0, hard_label_weight=0.5)], steps=steps,
                        batch_size=64, lr=3e-3, schedule="cosine", warmup_ratio=0.05, weight_decay=0.01,
                        seed=seed, checkpoint_every=max(steps, 1), keep_best=False)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def encode(rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": xt[rows], "labels": yt[rows]}

    return train_batches(student, encode, len(x), teacher_logits, cfg, work_dir)


def main(teacher_epochs: int = 60, student_steps: int = 1200, seed: int = 0,
         image_folder: Path | None = None) -> dict[str, float]:
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    x_train, x_test, y_train, y_test = load_data(image_folder, seed)
    classes = int(y_train.max()) + 1
    torch.manual_seed(seed)
    teacher = fit_teacher(TinyViT(classes), x_train, y_train, teacher_epochs, seed)
    torch.manual_seed(seed)
    student = SmallCNN(classes)
    student(torch.from_numpy(x_train[:1]))  # materialise the lazy head before the optimizer sees it
    with tempfile.TemporaryDirectory() as work:
        distil(student, x_train, y_train, logits(teacher, x_train), student_steps, seed, Path(work))
    return {"teacher_accuracy": accuracy(teacher, x_test, y_test),
            "student_accuracy": accuracy(student, x_test, y_test),
            "teacher_params": sum(p.numel() for p in teacher.parameters()),
            "student_params": sum(p.numel() for p in student.parameters())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs and steps (the test's run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-folder", type=Path, default=None)
    args = parser.parse_args()
    result = main(15, 150, args.seed, args.image_folder) if args.quick else main(seed=args.seed,
                                                                                  image_folder=args.image_folder)
    print(f"teacher ViT : {result['teacher_accuracy']:.2%} ({result['teacher_params']:,} parameters)")
    print(f"student CNN : {result['student_accuracy']:.2%} ({result['student_params']:,} parameters)")
