"""A generation's options, its lifecycle (every status change), its queue and the reaper."""
