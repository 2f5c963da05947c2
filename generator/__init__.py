"""posnet: declarative POS store network specs rendered into reviewable configs."""

__version__ = "0.1.0"
