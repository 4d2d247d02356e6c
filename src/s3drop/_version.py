"""The version alone, so that `s3drop --help` and `s3drop --version` import nothing else."""

__version__ = "0.1.0"
