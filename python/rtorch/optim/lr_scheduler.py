"""Learning-rate schedules (filled in below)."""
