"""Offline evaluation of the models on data nobody here wrote (``anomon evaluate``)."""
