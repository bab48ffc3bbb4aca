"""wrn-deploy: Wide Residual Networks from training to production inference."""

__version__ = "0.7.0"
