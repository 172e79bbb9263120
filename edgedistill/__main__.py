"""``python -m edgedistill`` (and ``torchrun … -m edgedistill distill …``): the command-line interface."""

from edgedistill.cli import app

if __name__ == "__main__":
    app()
