"""码上监督 (supervise): a mass-supervision feedback-loop platform."""

__version__ = "0.1.0"
