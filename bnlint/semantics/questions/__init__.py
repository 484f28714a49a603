"""What rule families ask of a file's facts: channels and axes, training mode, batches,
recurrence."""
