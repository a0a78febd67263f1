"""Variations of a batch: prompt templates and wildcard lists, comparison grids, and the plan a batch is made from."""
