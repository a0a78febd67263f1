"""A generation's life: every status change (lifecycle), the queue, the reaper, and the allowances it spends."""
