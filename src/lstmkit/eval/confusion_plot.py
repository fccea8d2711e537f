"""The confusion matrix as a PNG image (matplotlib, Agg backend: no display needed)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def confusion_matrix_png(matrix: list[list[int]], classes: list[str], title: str) -> bytes:
    """PNG bytes of a confusion matrix (rows: true class, columns: predicted class), counts in each cell."""
    size = max(3.5, 0.6 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    try:
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(len(classes)), labels=classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), labels=classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        top = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=100)
        return out.getvalue()
    finally:
        plt.close(fig)
