"""segkit: customer segmentation for wholesale distributors."""

__version__ = "0.1.0"
