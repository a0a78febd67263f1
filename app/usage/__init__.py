"""Where the credits went: usage by day, user and model from the stored generations, its chart and its CSV."""
