"""tutorial_nas: Neural Architecture Search, every method of the course runnable and readable."""

from .errors import NASInputError
from .profiles import get_profile, seed_everything, setup

__version__ = "0.1.0"
REPOSITORY = "https://github.com/tutorial-nas/tutorial_nas"

__all__ = ["NASInputError", "REPOSITORY", "__version__", "get_profile", "seed_everything", "setup"]
