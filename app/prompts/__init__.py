"""The home form: prompt rows added and removed in place, the options, the cost, recent prompts."""
