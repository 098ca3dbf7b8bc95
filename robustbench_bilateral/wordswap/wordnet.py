"""WordNet 3.0 synonyms from the Debian package ``wordnet-base``, read with nltk.

The package ships the database files (``/usr/share/wordnet``, or ``BILAT_EVAL_WORDNET``) but not
``lexnames``, the table of the 45 lexicographer files that nltk's reader needs. The first use
copies the files into ``<cache>/wordnet`` (nltk reads only below its data roots) and writes
``lexnames`` there (``NN<TAB>name<TAB>category``; category 1 noun, 2 verb, 3 adjective, 4 adverb,
as in lexnames(5WN)).
"""

from __future__ import annotations

import os
import shutil
import warnings
from functools import lru_cache
from pathlib import Path

from robustbench_bilateral.atomic import atomic_folder
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.paths import cache_dir

LEXICOGRAPHER_FILES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def wordnet_source_dir() -> Path:
    return Path(os.environ.get("BILAT_EVAL_WORDNET", "/usr/share/wordnet"))


def lexnames_table() -> str:
    """The 45-line ``lexnames`` file."""
    return "".join(
        f"{number:02d}\t{name}\t{CATEGORY[name.split('.')[0]]}\n" for number, name in enumerate(LEXICOGRAPHER_FILES)
    )


@lru_cache(maxsize=1)
def wordnet():
    """An nltk ``WordNetCorpusReader`` over the Debian WordNet files (built once per process)."""
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    source = wordnet_source_dir()
    if not (source / "data.noun").exists():
        raise BilatError(
            f"WordNet files are missing in {source}: install the Debian package wordnet-base "
            "(apt-get install wordnet-base) or set BILAT_EVAL_WORDNET"
        )
    root = cache_dir() / "wordnet"
    if not root.exists():
        with atomic_folder(root) as partial:
            shutil.copytree(source, partial, dirs_exist_ok=True)
            (partial / "lexnames").write_text(lexnames_table())
    if not (root / "lexnames").exists():
        raise BilatError(f"{root} is not a WordNet copy of bilat-eval (no lexnames): delete it, the next use rebuilds it")
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))

    class DebianWordNet(WordNetCorpusReader):
        """WordNet 3.0 alone: no mapping to another WordNet release, no multilingual data."""

        def map_wn(self, version: str = "wordnet") -> None:
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return DebianWordNet(str(root), None)


def synonyms(word: str) -> list[str]:
    """Single-word synonyms of ``word`` in the part of speech of its most frequent WordNet sense.

    The first synset nltk returns is the most frequent sense; its part of speech stands in for the
    word's (satellite adjectives count as adjectives). Multi-word lemmas and the word itself are
    left out; order is WordNet's (sense frequency, then lemma order), without repeats.
    """
    reader = wordnet()
    senses = reader.synsets(word.lower())
    if not senses:
        return []
    pos = senses[0].pos().replace("s", "a")
    found: list[str] = []
    for sense in senses:
        if sense.pos().replace("s", "a") != pos:
            continue
        for lemma in sense.lemma_names():
            if "_" not in lemma and lemma.lower() != word.lower() and lemma not in found:
                found.append(lemma)
    return found
