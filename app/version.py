"""The one place the release number is written: ``medvault --version`` prints it and the wheel build reads it."""

__version__ = "0.1.0"
