"""Unlabelled text for distillation: text files, table columns, STS sentences, and a built-in offline corpus.

The built-in ``python-docs`` corpus exists on every machine with Python: the text of
``pydoc_data.topics`` and the docstrings of the standard library's source files (read with ``ast``,
never imported), cleaned of markup and code and split into sentences. No teacher labels are needed:
the teacher labels the text during distillation.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from edgedistill.config import TextSource
from edgedistill.errors import InputError

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
MARKUP = re.compile(r"[`*|]+|:[a-z]+:|\.\. [a-z-]+::.*|\[\d+\]_?")
WORD = re.compile(r"[A-Za-z][a-z']+")
MIN_WORDS, MAX_WORDS = 6, 40


def split_sentences(paragraph: str) -> Iterator[str]:
    """Split a paragraph of prose into sentences, dropping markup."""
    text = MARKUP.sub("", " ".join(paragraph.split()))
    yield from (s.strip() for s in SENTENCE_END.split(text) if s.strip())


def is_prose(sentence: str) -> bool:
    """Keep sentences that read as English prose: enough words, mostly letters, no code."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not sentence[0].isupper():
        return False
    if any(tok in sentence for tok in (">>>", "::", "==", "()", "{", "}", "->", "__", "\\", "http")):
        return False
    return len(WORD.findall(sentence)) >= 0.7 * len(words)


def paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of a docstring or topic: blocks separated by blank lines, skipping indented code."""
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if lines and not all(ln.startswith((" " * 4, "\t")) for ln in lines[1:] or lines):
            yield block


def docstrings(path: Path) -> Iterator[str]:
    """Module, class and function docstrings of one source file (parsed, not imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def python_docs_texts() -> Iterator[str]:
    """Raw texts of the built-in corpus, in a fixed order."""
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if not {"test", "tests", "idle_test", "site-packages"} & set(path.relative_to(stdlib).parts):
            yield from docstrings(path)


def unique(texts: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [t for t in texts if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]


def python_docs_corpus() -> list[str]:
    """Sentences of English prose from the Python documentation and standard-library docstrings."""
    sentences = (s for text in python_docs_texts() for p in paragraphs(text) for s in split_sentences(p))
    return unique(s for s in sentences if is_prose(s))


def read_text_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file.

    Raises:
        InputError: the file cannot be read or is not UTF-8 text.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read corpus {path}: {err.__class__.__name__}: {err}") from None
    texts = [ln.strip() for ln in lines if ln.strip()]
    if not texts:
        raise InputError(f"corpus {path} has no text lines")
    return texts


def texts_hash(texts: list[str], files: bool = False) -> str:
    """A hash of the samples, in order; ``files``: they are paths (images) and their contents count too."""
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8") + b"\n")
        if files:
            digest.update(hashlib.sha256(Path(t).read_bytes()).digest())
    return digest.hexdigest()


def split_holdout(texts: list[str], holdout: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle (seeded) and split off ``holdout`` texts for measuring fidelity; the rest is for training.

    Raises:
        InputError: fewer than ``holdout`` + 1 texts.
    """
    if len(texts) <= holdout:
        raise InputError(f"the training data has {len(texts)} texts; need more than data.holdout={holdout}")
    shuffled = texts[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[holdout:], shuffled[:holdout]


def load_source(source: TextSource) -> list[str]:
    """Texts of one configured source (an optional source whose file is missing gives none)."""
    if source.source == "python-docs":
        texts = python_docs_corpus()
    elif source.path is None or not source.path.exists():
        if source.required:
            raise InputError(f"training data not found: {source.path}")
        from edgedistill.progress import console

        console.print(f"[yellow]warning:[/yellow] optional training data {source.path} not found; skipped")
        return []
    elif source.source == "stsb":
        from edgedistill.data.stsb import read_sts

        pairs = read_sts(source.path)
        texts = unique([*pairs.sentences1, *pairs.sentences2])
    elif source.source == "image-folder":
        from edgedistill.data.labelled import image_paths

        texts = image_paths(source.path)
    elif source.source in ("jsonl", "csv", "tsv"):
        from edgedistill.data.tables import read_table

        texts = read_table(source.path, source.source, source.column or "text", source.text_pair)
    elif source.source == "hf-dataset":
        from edgedistill.data.tables import read_dataset

        texts = read_dataset(source.path, source.column or "text", source.text_pair, source.split)
    else:
        texts = read_text_lines(source.path)
    return texts[: source.limit] if source.limit else texts


def load_train_texts(sources: list[TextSource]) -> list[str]:
    """All configured training texts, de-duplicated, in source order."""
    return unique(t for s in sources for t in load_source(s))
