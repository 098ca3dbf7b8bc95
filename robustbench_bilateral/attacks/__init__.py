"""Adversarial attacks as threats (``vision``: torchattacks' attacks and the reference AutoAttack of
``pyautoattack``; ``language``: attacks on token embeddings) and where they act (``space``); the sanity
checks that expose false robustness are ``engine.model_checks`` (per model) and ``results.sanity`` (across cells)."""
