"""Training our own TIPO-format models: tokenizer, samples, training loop, export.

Needs the ``train`` extra (PyTorch, transformers, accelerate).
"""
