"""Adversarial attacks as threats (``vision``), where they act (``space``) and the sanity checks
that expose false robustness (``sanity``)."""
