"""Tokenizers for pre-training: ChemBERTa-2's own files, or a regex SMILES tokenizer built from the corpus.

ChemBERTa-2's tokenizer is byte-level BPE with an empty merges.txt: it splits SMILES into characters, and
characters missing from its vocabulary (l, r, [, ], @, H, +, ...) are dropped without a trace, so `Cl` reads
as `C`, `Br` as `B` and `[C@H]` as `C`. The regex tokenizer keeps atoms, bracket atoms and ring bonds whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

# Schwaller et al., "Molecular Transformer" (ACS Cent. Sci. 2019): one token per bracket atom, two-letter
# halogen, atom, bond, branch and ring-bond number (%nn for two digits).
SMILES_REGEX = r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
# RoBERTa's special tokens in RoBERTa's order, so that ChemBERTa-2's config (bos 0, pad 1, eos 2) fits them.
BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
SPECIAL_TOKENS = (BOS, PAD, EOS, UNK, MASK)
MODEL_MAX_LENGTH = 512
TOKENIZER_KINDS = ("chemberta2", "regex")


def build_regex_tokenizer(smiles: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the SMILES regex with every token of `smiles`; others become <unk>."""
    backend = Tokenizer(models.WordLevel(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
    backend.train_from_iterator(smiles, trainer=trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS)))
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, backend.token_to_id(BOS)), (EOS, backend.token_to_id(EOS))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=MASK,
        cls_token=BOS,
        sep_token=EOS,
        model_max_length=MODEL_MAX_LENGTH,
    )


def pretraining_tokenizer(kind: str, architecture_dir: str | Path, train_smiles: list[str]) -> PreTrainedTokenizerBase:
    """`chemberta2`: the tokenizer files in `architecture_dir`; `regex`: built from the training SMILES."""
    if kind == "chemberta2":
        return AutoTokenizer.from_pretrained(architecture_dir)
    if kind == "regex":
        return build_regex_tokenizer(train_smiles)
    raise ValueError(f"tokenizer '{kind}': not one of {', '.join(TOKENIZER_KINDS)}")
