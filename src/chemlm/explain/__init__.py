"""Atom-level explanations: which atoms of a molecule a model's prediction rests on (issue 24).

- `chemlm.explain.explanations`: the tables every kind of model's attributions are written as.
- `chemlm.explain.smiles_map`: the atom (RDKit's index for the SMILES as written) of each character of a SMILES, and
  so of each token of any tokenizer; no RDKit, no torch.
- `chemlm.explain.gradients`: integrated gradients of a fine-tuned transformer over its input token embeddings (torch).
- `chemlm.explain.fingerprints`: atom weights of the fingerprint models by removing each atom's ECFP4 bits (RDKit).
"""
