"""Row accounting: every row read is loaded, quarantined or deduplicated, and nothing else."""

from dataclasses import asdict, dataclass


@dataclass
class Accounting:
    """Counts for one resource over one load."""

    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_deduplicated: int = 0

    @property
    def balanced(self) -> bool:
        """True when read = loaded + quarantined + deduplicated."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_deduplicated

    def add(self, other: "Accounting") -> "Accounting":
        """The sum of two accountings (several loads in one materialization)."""
        return Accounting(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, int]:
        """Plain dict, for dlt state and Dagster metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> "Accounting":
        """Inverse of :meth:`as_dict`; unknown keys are ignored."""
        values = values or {}
        return cls(**{k: int(values.get(k) or 0) for k in cls.__dataclass_fields__})
