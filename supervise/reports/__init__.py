"""每周超期件通报: the weekly overdue-case report, built in SQL, stored as an immutable snapshot."""
