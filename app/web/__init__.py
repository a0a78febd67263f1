"""The web shell around the features: error pages, security headers, template helpers."""
