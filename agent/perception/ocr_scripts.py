"""A second reading for lines in scripts the default recogniser does not know.

RapidOCR's shipped recogniser reads Chinese and Latin script.  Shown other
scripts it does not fail, it guesses: Cyrillic comes back as Latin
look-alikes ("TepMNHan" for "Терминал"), Greek, Hebrew and Arabic as a
jumble of Latin letters, Korean as nothing, Japanese as its kanji without
the kana.  An order to the agent in Russian then reaches the injection
guard as noise.

:func:`looks_misread` spots such a reading from the first recogniser's own
output (no second model runs for ordinary Latin or Chinese text), and
:class:`ScriptReader` reads those lines again with Tesseract's script models
(LSTM, one per script: Cyrillic, Greek, Arabic, Hebrew, Hangul, Japanese,
Devanagari, Thai) through ``tesserocr``, whose wheel carries the Tesseract
library.  The models are Debian's ``tesseract-ocr-script-*`` packages
(``scripts/debian-packages.txt``); nothing is downloaded at run time.  A
reading is kept only when Tesseract is sure of it and it is mostly in the
script of the model that read it: the other models read Latin too, and a
Latin line that merely looked odd keeps its first reading.

Why Tesseract and not more ONNX recognisers: no wheel on PyPI carries
PaddleOCR's Cyrillic, Korean or Arabic models, and Tesseract's script models
are packaged, small (3–10 MB each) and fast on one line (20–70 ms).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.perception.regions import Image
from agent.perception.screen import TextElement

# Where Debian's tesseract-ocr packages put the models (Tesseract's own
# variable names another folder).
TESSDATA = Path(os.environ.get("TESSDATA_PREFIX") or "/usr/share/tesseract-ocr/5/tessdata")


@dataclass(frozen=True, slots=True)
class Script:
    """One Tesseract script model and the Unicode letters that are its own."""

    model: str
    letters: tuple[str, ...]  # prefixes of unicodedata names
    # Tesseract splits some scripts between characters; two of its words
    # closer than this share of the line's height are one word.
    joins_below: float = 0.0
    # Korean: Tesseract splits some words into syllables.  Where the gaps fall
    # in two groups, the narrow ones (inside words) join.
    joins_syllables: bool = False
    # Tesseract gives a right-to-left line's words in visual order, each
    # spelt backwards; such a line is kept whole, in reading order.
    right_to_left: bool = False
    # Letters a reading in this script has at least one of (Japanese has
    # kana: a line of kanji alone is Chinese, which the first reading knows).
    needs_one_of: tuple[str, ...] = ()
    # Whether Tesseract's English model tells the Latin words inside such a
    # line apart (amid Cyrillic or Greek it does; amid Japanese it reads
    # kana as Latin with confidence).
    latin_inside: bool = False
    # Whether Tesseract's model for it reads Latin letters as its own ("๒ackup"
    # for "backup"): a path or an address it read then stands as the first
    # recogniser read it, if that was sure.
    mangles_latin: bool = False

    @property
    def spaced(self) -> bool:
        """Whether words are set apart by spaces (a lone letter is then a
        word or a speck, not one syllable or character of a word)."""
        return not (self.joins_below or self.joins_syllables)


SCRIPTS = (
    Script("Cyrillic", ("CYRILLIC",), latin_inside=True),
    Script("Greek", ("GREEK",), latin_inside=True),
    Script("Arabic", ("ARABIC",), right_to_left=True, mangles_latin=True),
    Script("Hebrew", ("HEBREW",), right_to_left=True, mangles_latin=True),
    Script("Hangul", ("HANGUL",), joins_syllables=True),
    Script("Japanese", ("HIRAGANA", "KATAKANA", "CJK"), joins_below=0.5,
           needs_one_of=("HIRAGANA", "KATAKANA")),
    Script("Devanagari", ("DEVANAGARI",), latin_inside=True),
    Script("Thai", ("THAI",), joins_below=0.5, mangles_latin=True),
)
# Read first: a line it reads surely is Latin, whatever it looked like; in
# a line of another script its words replace the script model's where it is
# surer by this much (a path, an address or a command amid Cyrillic).
LATIN_SURER_BY = 0.05
_LATIN_FROM = 0.5
_CERTAIN = 0.85  # as _CERTAIN_FROM, on the 0-1 scale of word confidences
# Characters of paths, addresses, URLs and code; a dot inside a word.  (Not
# digits: the first recogniser reads "за" as "3a", "будь" as "6ynb".)
# Words of lowercase letters and digits (see _digits_amid_letters).
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"\d")
_NUMBER_AND_UNIT = re.compile(r"[\d.,]+[^\W\d_]{1,3}")
_ODD_WORDS = 3
_ODD_SHARE = 0.3
# A path, an address, a URL or a file name, with at least this many letters.
_NAMES_A_PLACE = re.compile(r"[/~\\]|\w@\w|\w\.\w")
_PLACE_LETTERS = 3
# A word's leading and trailing punctuation, and what is between.
_EDGES = re.compile(r"([^\w@]*)(.*?)([^\w@]*)", re.DOTALL)
_MIRROR = str.maketrans("()[]{}<>", ")(][}{><")
_TECHNICAL = re.compile(r"[/@~_=$|\\#%&*+<>\[\]{}]|\w\.\w")
# A script model's reading of Latin text: letters of Serbian and Macedonian
# that look like s, j, h (a Russian or Ukrainian text has none), or a capital
# inside a word.
_GIVEAWAY = re.compile(r"[ѕјћђџљњ]|\w[А-ЯЁ]\w")
LATIN = Script("eng", ("LATIN",))

# Lines narrower than this many heights are not read again.
_SHORTEST = 4
# A first reading this unsure is read again.
_UNSURE_BELOW = 0.85
# Characters per unit of a line's aspect ratio (width / height): Latin print
# runs about 1.6-2.2, Chinese about 1.0 (1.25 in a terminal's double-width
# cells); a reading under this dropped glyphs it could not name (Korean,
# Japanese kana), the second where the reading is Chinese characters.
_UNDER_READ_BELOW = 0.55
_UNDER_READ_CJK_BELOW = 0.8
# This share of a line's ink with no character read near it: the recogniser
# skipped glyphs it does not know ("फ़ाइल", "पर भेजें") between Latin words it
# read surely.
_UNREAD_SHARE = 0.2
# A word of this many letters or more read at under this confidence is a
# guess at glyphs the first recogniser does not know.  On 1,507 drawn lines of
# Latin-script text, 4 have such a word (and Tesseract's English model keeps
# them Latin); Thai read as Latin: 0.73.
_GUESSED_LETTERS = 3
_GUESSED_BELOW = 0.8
# Latin look-alikes of Cyrillic mix the cases inside words ("npeAbIAyWue",
# "TepMNHan"), where code's camelCase starts each part with one capital
# followed by lower case ("addEventListener", "getElementById").
_MIXED_CASE = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
_CAMEL_CASE = re.compile(r"[a-z]*(?:[A-Z][a-z]+)+")
# A script model's reading is kept at or above this mean confidence (0-100),
# with at least this share of its letters in its own script (the rest may be
# Latin: "sudo を実行して") and at most this share in any third script.
_SURE_FROM = 70
_OWN_SCRIPT_SHARE = 0.3
_STRAY_SHARE = 0.1
# Beside a line read in the same script (see ScriptReader.read's ``beside``).
_SURE_IN_PARAGRAPH_FROM = 35
# ... unless the English model is this much surer (code beside Russian text).
_LATIN_AHEAD_BY = 10
_OWN_IN_PARAGRAPH_SHARE = 0.6
# A reading this sure ends the search: no other script is tried.
_CERTAIN_FROM = 85
_CJK = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")
_CJK_CELLS = ("CJK", "HIRAGANA", "KATAKANA")  # set in double-width cells, no spaces
_CJK_CELL_GAP = 1.2
_SYLLABLE_GROUPS = 1.5
_TOUCHING = 0.1
# Words Tesseract is this unsure of, of one or two characters, are specks.
_NOISE_BELOW = 0.3
# Lines are scaled to this height before Tesseract reads them.
_LINE_HEIGHT = 48


def looks_misread(text: str, confidence: float, width: int, height: int, *,
                  unread_ink: float = 0.0, words: Sequence[TextElement] = ()) -> bool:
    """Whether the first recogniser's reading of a ``width`` x ``height`` line
    image looks like a script it does not know.  ``unread_ink``: the share of
    the line's ink it read no character in
    (:func:`~agent.perception.words.unread_ink_share`); ``words``: its words."""
    if width < _SHORTEST * height:
        return False  # a label of a word or two: not an order worth a second reading
    if unread_ink >= _UNREAD_SHARE or any(_guessed(word) for word in words):
        return True
    characters = len(text.strip())
    if characters < _UNDER_READ_BELOW * width / height:
        return True
    if _mostly_cjk(text) and characters < _UNDER_READ_CJK_BELOW * width / height:
        return True
    if confidence < _UNSURE_BELOW:
        return True
    return (_looks_like_cyrillic_in_latin(text) or _mixes_scripts_in_words(text)
            or _digits_amid_letters(text))


def _digits_amid_letters(text: str) -> bool:
    """Hebrew read as Latin: its letters come back as n, w, v and 7
    ("wnnwn7 n5on nains7" for "שלח את הקובץ"), every word sure.  A word of
    Latin print seldom mixes lowercase letters and digits unless it is a
    path, an address, a number with its unit ("200g") or a code; in the
    15,367 lines with Latin letters of the corpora none has three such words
    making up 30% of the line."""
    words = [w.strip(".,;:!?()\"'") for w in text.split()]
    odd = [w for w in words if _LOWER.search(w) and _DIGIT.search(w)
           and not _TECHNICAL.search(w) and not _NUMBER_AND_UNIT.fullmatch(w)]
    return len(odd) >= _ODD_WORDS and len(odd) >= _ODD_SHARE * len(words)


def _guessed(word: TextElement) -> bool:
    """A word of letters the first recogniser was unsure of: Thai comes back as
    Latin words ("naunaislw" for "กรุณาส่งไฟล์") beside the surely read path."""
    letters = sum(1 for ch in word.text if ch.isalpha())
    return letters >= _GUESSED_LETTERS and word.confidence < _GUESSED_BELOW


def _looks_like_cyrillic_in_latin(text: str) -> bool:
    words = re.findall(r"[^\W\d_]{3,}", text)
    odd = [word for word in words
           if _MIXED_CASE.search(word[1:]) and not _CAMEL_CASE.fullmatch(word)]
    return len(odd) >= 2 or (bool(words) and 3 * len(odd) >= len(words))


def _mixes_scripts_in_words(text: str) -> bool:
    """Greek or CJK letters inside Latin words ("BiμKpuTe", "6入ec"): a misreading."""
    for word in text.split():
        scripts = {_script_of(ch) for ch in word if ch.isalpha()}
        if "LATIN" in scripts and len(scripts) > 1:
            return True
    return False


def _mostly_cjk(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if _script_of(ch) in _CJK)
    return 2 * cjk > len(letters)


def _script_of(ch: str) -> str:
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return ""


def _installed(tessdata: Path, script: Script) -> bool:
    return (tessdata / f"{script.model}.traineddata").is_file()


@dataclass(frozen=True, slots=True)
class OtherScript:
    """A line read by a script model: the model's name and the words."""

    script: str
    words: tuple[TextElement, ...]


@dataclass(frozen=True, slots=True)
class _Reading:
    script: Script
    words: tuple[TextElement, ...]
    confidence: float
    own_share: float
    stray_share: float

    @property
    def kept(self) -> bool:
        return bool(self.words) and self.confidence >= _SURE_FROM \
            and self.own_share >= _OWN_SCRIPT_SHARE and self.stray_share <= _STRAY_SHARE

    @property
    def kept_in_paragraph(self) -> bool:
        return bool(self.words) and self.confidence >= _SURE_IN_PARAGRAPH_FROM \
            and self.own_share >= _OWN_IN_PARAGRAPH_SHARE \
            and self.stray_share <= _STRAY_SHARE


class ScriptReader:
    """Reads line images with Tesseract's script models, loaded when first needed.

    The script that last gave a reading is tried first: a screen is usually in
    one language.  Thread-safe.
    """

    def __init__(self, tesserocr: Any, tessdata: Path,
                 scripts: Sequence[Script] = SCRIPTS) -> None:
        self._tesserocr = tesserocr
        self._tessdata = tessdata
        self._scripts = [s for s in scripts if _installed(tessdata, s)]
        self._latin = LATIN if _installed(tessdata, LATIN) else None
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.lines_read = 0

    @classmethod
    def installed(cls, tessdata: Path = TESSDATA) -> ScriptReader | None:
        """The reader, or None when tesserocr or every script model is missing
        (then lines in other scripts keep the first recogniser's guess)."""
        try:
            import tesserocr  # type: ignore[import-untyped]
        except ImportError:
            return None
        reader = cls(tesserocr, tessdata)
        return reader if reader.scripts else None

    @property
    def scripts(self) -> tuple[str, ...]:
        return tuple(script.model for script in self._scripts)

    def read(self, piece: Image, first_reading: Sequence[TextElement] = (), *,
             beside: str | None = None) -> OtherScript | None:
        """The line image ``piece`` (BGR) read in the script that reads it
        with confidence, word boxes relative to the piece; None when no
        script model does.

        ``beside``: the script (a model's name) a neighbouring line of the
        same paragraph was read in; only that model is tried, and its reading
        is kept on less confidence (a line of a Russian paragraph is Russian;
        what makes Tesseract unsure is mostly the neighbours' descenders in
        the line's box), as long as nearly all its letters are its own.

        ``first_reading``: the first recogniser's words for the line, which
        stand where the line turns out to hold Latin words (a path, an
        address, a command) amid the other script."""
        image, scale = _prepared(piece)
        with self._lock:
            self.lines_read += 1
            latin = self._read_as(self._latin, image, scale) if self._latin else None
            if latin is not None and latin.kept and latin.confidence >= _CERTAIN_FROM:
                return None  # Latin print the first recogniser found hard
            scripts = [s for s in self._scripts if beside is None or s.model == beside]
            best = self._best_script_reading(scripts, image, scale, latin,
                                             _sure_technical_words(first_reading),
                                             in_paragraph=beside is not None)
            if best is None or (beside is not None and latin is not None
                                and latin.confidence > best.confidence + _LATIN_AHEAD_BY):
                return None  # beside another script's line, still Latin: code, a name
            self._try_first(best.script)
            words = best.words
            if latin is not None and best.script.latin_inside:
                words = _with_latin_words(best.words, latin.words, first_reading)
            return OtherScript(best.script.model, words)

    def _best_script_reading(self, scripts: Sequence[Script], image: Any, scale: float,
                             latin: _Reading | None, sure: Sequence[TextElement], *,
                             in_paragraph: bool = False) -> _Reading | None:
        """The surest reading a script keeps.  A script whose model reads Latin
        letters as its own reads the line with the first recogniser's sure
        paths, addresses and commands (``sure``) blanked out, and is judged
        on the rest, with those put in their place."""
        blanks = sure and any(script.mangles_latin for script in scripts)
        blanked = _blanked(image, sure, scale) if blanks else None
        best: _Reading | None = None
        for script in scripts:
            if blanked is not None and script.mangles_latin:
                reading = self._read_as(script, blanked, scale, put_in=sure)
            else:
                reading = _judged_with_latin_words(self._read_as(script, image, scale), latin)
            kept = reading.kept_in_paragraph if in_paragraph else reading.kept
            if kept and (best is None or reading.confidence > best.confidence):
                best = reading
            if best is not None and best.confidence >= _CERTAIN_FROM:
                break
        return best

    def _try_first(self, script: Script) -> None:
        self._scripts.remove(script)
        self._scripts.insert(0, script)

    def _read_as(self, script: Script, image: Any, scale: float,
                 put_in: Sequence[TextElement] = ()) -> _Reading:
        """``image`` read by ``script``'s model, judged on its own words;
        ``put_in``: words read elsewhere (and blanked out of ``image``) that
        then stand in the reading."""
        engine = self._engine(script)
        raw = self._recognised(engine, image, scale)
        confidence = float(np.mean([w.confidence for w in raw])) * 100 if raw else 0.0
        if script.spaced:
            raw = [w for w in raw if w.confidence >= _NOISE_BELOW or len(w.text) > 2]
        if script.right_to_left:
            text = _text_or_nothing(engine.GetUTF8Text)
            words = _whole_line(raw, text)
            own, stray = _letter_shares(script, words)
            if put_in and words:
                words = _whole_line([*raw, *put_in], _in_reading_order(text, raw, put_in))
        else:
            words = _grouped(script, raw)
            own, stray = _letter_shares(script, words)
            if put_in:
                words = _with_words_put_in(words, put_in)
        return _Reading(script, tuple(words), confidence, own, stray)

    def _recognised(self, engine: Any, image: Any, scale: float) -> list[TextElement]:
        """The words ``engine`` reads in the line ``image``; its results stay
        in ``engine`` for the line's text.

        Tesseract's layout analysis sometimes finds no text in a plain line
        (a Persian line at 18 px, read as nothing by every model); read as a
        raw line, without that analysis, it reads at 89."""
        engine.SetImage(image)
        engine.Recognize()
        words = _words(self._tesserocr, engine, scale)
        if words:
            return words
        psm = self._tesserocr.PSM
        engine.SetPageSegMode(psm.RAW_LINE)
        try:
            engine.SetImage(image)
            engine.Recognize()
            return _words(self._tesserocr, engine, scale)
        finally:
            engine.SetPageSegMode(psm.SINGLE_LINE)

    def _engine(self, script: Script) -> Any:
        engine = self._engines.get(script.model)
        if engine is None:
            api = self._tesserocr
            engine = api.PyTessBaseAPI(path=str(self._tessdata), lang=script.model,
                                       psm=api.PSM.SINGLE_LINE, oem=api.OEM.LSTM_ONLY)
            self._engines[script.model] = engine
        return engine


def _judged_with_latin_words(reading: _Reading, latin: _Reading | None) -> _Reading:
    """``reading`` as sure as it is once the Latin words inside it are put in.

    A script model reads the path and the address inside a Hindi sentence
    poorly ("/.5ऽ/4_75" for "/.ssh/id_rsa"), and those words alone can take
    a good reading of the sentence under the line it is kept from.  Where
    the English model reads them (see :func:`_with_latin_words`), the
    reading is judged on its words with those in their place."""
    if latin is None or not reading.script.latin_inside or not reading.words:
        return reading
    words = _with_latin_words(reading.words, latin.words, ())
    confidence = _mean_confidence(words) * 100
    if confidence <= reading.confidence:
        return reading
    return dataclasses.replace(reading, confidence=confidence)


def _grouped(script: Script, words: list[TextElement]) -> list[TextElement]:
    """Tesseract's pieces of words joined as the script writes them."""
    if script.joins_syllables:
        return _joined(words, _syllable_gap(words))
    if script.joins_below:
        return _joined(words, script.joins_below, technical_apart=script.mangles_latin)
    return words


def _letter_shares(script: Script, words: Sequence[TextElement]) -> tuple[float, float]:
    """The shares of the reading's letters in the script's own alphabet and
    in a third one (neither it nor Latin)."""
    letters = [_script_of(ch) for word in words for ch in word.text if ch.isalpha()]
    own = sum(1 for name in letters if name.startswith(script.letters))
    if script.needs_one_of and not any(name.startswith(script.needs_one_of)
                                       for name in letters):
        own = 0
    stray = sum(1 for name in letters
                if not name.startswith(script.letters) and name != "LATIN")
    count = max(len(letters), 1)
    return own / count, stray / count


def _sure_technical_words(words: Sequence[TextElement]) -> list[TextElement]:
    """The paths, addresses, URLs and file names among ``words`` read surely.

    Only words shaped like one, with three Latin letters or more: the first
    recogniser reads some Hebrew and Arabic words surely as Latin with a
    bracket or a percent sign ("[o7ynn]" for "[התעלם]", "l0%" for "%10")."""
    return [w for w in words if w.text.isascii() and w.confidence >= _CERTAIN
            and _NAMES_A_PLACE.search(w.text)
            and sum(ch.isalpha() for ch in w.text) >= _PLACE_LETTERS]


def _with_words_put_in(words: Sequence[TextElement],
                       put_in: Sequence[TextElement]) -> list[TextElement]:
    """``words`` (left to right) with ``put_in`` in place of any mostly inside them."""
    kept = [w for w in words if not any(_mostly_inside(w, p) for p in put_in)]
    return sorted([*kept, *put_in], key=lambda w: w.x0)


def _in_reading_order(text: str, words: Sequence[TextElement],
                      put_in: Sequence[TextElement]) -> str:
    """A right-to-left line's ``text`` (in reading order) with the words
    ``put_in`` where they stand: after as many of Tesseract's ``words`` as
    lie to their right.  (Tesseract gives a word of ``text`` for each of
    ``words``; where it does not, the place is scaled.)"""
    tokens = text.split()
    per_word = len(tokens) / max(len(words), 1)
    for inserted, word in enumerate(sorted(put_in, key=_centre, reverse=True)):
        before = sum(1 for w in words if _centre(w) > _centre(word))
        tokens.insert(round(before * per_word) + inserted, in_writing_order(word.text))
    return " ".join(tokens)


def in_writing_order(seen: str) -> str:
    """A Latin word as written, from how a right-to-left line shows it.

    The punctuation at a Latin word's ends takes the line's direction
    (Unicode's bidirectional algorithm, as browsers and Pango apply it):
    "~/.ssh/id_rsa" amid Arabic shows as "ssh/id_rsa./~", its leading "~/."
    on the right, reversed, and a trailing ")" or "." on the left."""
    match = _EDGES.fullmatch(seen)
    if match is None:
        return seen
    left, middle, right = match.groups()
    return _mirrored(right[::-1]) + middle + _mirrored(left[::-1])


def _mirrored(text: str) -> str:
    return text.translate(_MIRROR)


def _centre(word: TextElement) -> float:
    return (word.x0 + word.x1) / 2


def _prepared(piece: Image) -> tuple[Any, float]:
    """The line as Tesseract reads best: grey, dark on light, 48 pixels high;
    and the scale applied."""
    from PIL import Image as PilImage

    grey = cv2.cvtColor(piece, cv2.COLOR_BGR2GRAY)
    if float(np.median(grey)) < 128:
        grey = 255 - grey  # light text on a dark theme
    scale = _LINE_HEIGHT / max(grey.shape[0], 1)
    resized = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return PilImage.fromarray(np.asarray(resized, dtype=np.uint8)), scale


def _blanked(image: Any, words: Sequence[TextElement], scale: float) -> Any:
    """A copy of the prepared line ``image`` with ``words`` (boxes in the line
    piece's pixels) painted over in its background."""
    from PIL import ImageDraw

    blank = image.copy()
    draw = ImageDraw.Draw(blank)
    for word in words:
        draw.rectangle((word.x0 * scale, 0, word.x1 * scale, blank.height), fill=255)
    return blank


def _words(tesserocr: Any, engine: Any, scale: float) -> list[TextElement]:
    """The recognised words, boxes back in the line image's pixels."""
    words: list[TextElement] = []
    level = tesserocr.RIL.WORD
    iterator = engine.GetIterator()
    if iterator is None:
        return words
    for word in tesserocr.iterate_level(iterator, level):
        text = _text_or_nothing(partial(word.GetUTF8Text, level))
        box = word.BoundingBox(level)
        if not text or not text.strip() or box is None:
            continue
        x0, y0, x1, y1 = (round(v / scale) for v in box)
        words.append(TextElement(text.strip(), x0, y0, x1, y1,
                                 round(word.Confidence(level) / 100, 4)))
    return words


def _text_or_nothing(read: Callable[[], str]) -> str:
    """Tesseract's text, or "" where it found none (it raises then)."""
    try:
        return read()
    except RuntimeError:
        return ""


def _joined(words: list[TextElement], below: float, *,
            technical_apart: bool = False) -> list[TextElement]:
    """Words re-joined where Tesseract put a space between characters that
    nearly touch (it splits Japanese per character group, Korean per
    syllable); a gap of ``below`` times the line's height or more stays one.
    ``technical_apart``: a path or an address amid the script's words stays a
    word of its own (Thai sets no spaces between words, so the gap around
    one is narrow)."""
    joined: list[TextElement] = []
    height = float(np.median([word.y1 - word.y0 for word in words])) if words else 1.0
    for word in words:
        last = joined[-1] if joined else None
        if last is not None and word.x0 - last.x1 < _join_gap(
                last, word, below, technical_apart=technical_apart) * height:
            joined[-1] = TextElement(last.text + word.text, last.x0, min(last.y0, word.y0),
                                     word.x1, max(last.y1, word.y1),
                                     min(last.confidence, word.confidence))
        else:
            joined.append(word)
    return joined


def _syllable_gap(words: Sequence[TextElement]) -> float:
    """The gap, in line heights, below which two of Tesseract's Korean words
    are syllables of one: midway between the narrow and the wide gaps when
    they fall in two groups (the wide ones at least 1.5 times the narrow),
    else only near-touching ones."""
    height = float(np.median([w.y1 - w.y0 for w in words])) if words else 1.0
    gaps = sorted(b.x0 - a.x1 for a, b in itertools.pairwise(words))
    best: tuple[float, float] | None = None  # (spread between groups, threshold)
    for cut in range(1, len(gaps)):
        narrow, wide = np.mean(gaps[:cut]), np.mean(gaps[cut:])
        spread = cut * (len(gaps) - cut) * float(wide - narrow) ** 2
        if wide >= _SYLLABLE_GROUPS * max(float(narrow), 1.0) and (
                best is None or spread > best[0]):
            best = (spread, (gaps[cut - 1] + gaps[cut]) / 2)
    if best is None:
        return _TOUCHING
    return best[1] / max(height, 1.0)


def _join_gap(left: TextElement, right: TextElement, below: float, *,
              technical_apart: bool) -> float:
    """The widest gap (in line heights) that still joins ``left`` and ``right``:
    wider between two CJK characters, which a terminal sets in double-width
    cells with room around them; none beside a path or an address where
    ``technical_apart``."""
    if technical_apart and (_TECHNICAL.search(left.text) or _TECHNICAL.search(right.text)):
        return 0.0
    if _script_of(left.text[-1]) in _CJK_CELLS and _script_of(right.text[0]) in _CJK_CELLS:
        return max(below, _CJK_CELL_GAP)
    return below


def _whole_line(words: list[TextElement], text: str) -> list[TextElement]:
    """The line as one element: Tesseract's line text (in reading order) in
    the box of all its words."""
    if not words or not text.strip():
        return []
    return [TextElement(" ".join(text.split()), min(w.x0 for w in words),
                        min(w.y0 for w in words), max(w.x1 for w in words),
                        max(w.y1 for w in words),
                        round(float(np.mean([w.confidence for w in words])), 4))]


def _with_latin_words(words: Sequence[TextElement], latin: Sequence[TextElement],
                      first_reading: Sequence[TextElement]) -> tuple[TextElement, ...]:
    """``words`` with Latin words put in where the line holds them: "~/.ssh/id_rsa"
    amid Russian is not "~/.55ћ/іа гѕа".  A stretch is Latin where Tesseract's
    English model reads it as something technical (a path, an address, a
    URL, code: characters no sentence has) and is surer of it than the
    script model, or where the script model's reading gives itself away
    (letters such as ѕ, ј, ћ that Russian never uses, capitals inside a
    word: "ѕуѕТет" for "system").  Plain lowercase words are left alone:
    Russian in a plain font reads as Latin look-alikes the English model is
    sure of ("ycnexe" for "успехе").  The words put in are the first
    recogniser's (it reads Latin better), else the English model's."""
    kept = list(words)
    for latin_word in latin:
        covered = [w for w in kept if _mostly_inside(w, latin_word)]
        if not covered and latin_word.text.isascii() and latin_word.confidence >= _CERTAIN:
            kept.append(latin_word)  # where the script model saw only specks: "| sh"
            kept.sort(key=lambda w: w.x0)
        elif covered and latin_word.text.isascii() and _latin_stretch(latin_word, covered):
            first = kept.index(covered[0])
            kept = [w for w in kept if w not in covered]
            kept[first:first] = [w for w in first_reading if _mostly_inside(w, latin_word)
                                 and w.text.isascii()] or [latin_word]
    return tuple(kept)


def _latin_stretch(latin_word: TextElement, covered: Sequence[TextElement]) -> bool:
    if _TECHNICAL.search(latin_word.text.strip(".,;:!?")):
        return latin_word.confidence >= _mean_confidence(covered) + LATIN_SURER_BY
    gives_away = any(_GIVEAWAY.search(w.text) for w in covered)
    return gives_away and latin_word.confidence >= _LATIN_FROM


def _mean_confidence(words: Sequence[TextElement]) -> float:
    return float(np.mean([w.confidence for w in words]))


def _mostly_inside(word: TextElement, span: TextElement) -> bool:
    overlap = min(word.x1, span.x1) - max(word.x0, span.x0)
    return overlap > 0.5 * max(word.x1 - word.x0, 1)
