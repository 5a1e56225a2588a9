"""commcredits: communications credits (prepaid balance) and real-time PSTN charging."""

__version__ = "0.1.0"
