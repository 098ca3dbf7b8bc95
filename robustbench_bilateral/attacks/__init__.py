"""Adversarial attacks as threats (``vision``) and where they act (``space``); the sanity checks
that expose false robustness are ``engine.model_checks`` (per model) and ``results.sanity`` (across cells)."""
