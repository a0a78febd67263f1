"""The generate page: a batch's cards, its progress and poll, time left, cancel and retry."""
