"""Training code (torch): demonstration generators and fingerprint extractors. Never imported by the app at run time."""
