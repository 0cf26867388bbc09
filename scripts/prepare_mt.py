#!/usr/bin/env python3
"""Turns the unpacked Debian packages trans-de-en, sword-text-kjv and sword-text-sparv into
sentence-aligned translation corpora (source<TAB>target, UTF-8, one pair a line).
Called by scripts/fetch_data.sh; standard library only.

  prepare_mt.py corpora RAW_DIR OUT_DIR    -> OUT_DIR/mt/ding_de_en.tsv, OUT_DIR/mt/kjv_rv1909.tsv
  prepare_mt.py sample  CORPORA_DIR OUT_DIR -> OUT_DIR/mt_de_en.tsv (the committed sample)

Every output depends only on the package contents (file order and md5 hashes, never chance).
"""
import hashlib
import html
import os
import re
import struct
import sys
import zlib

DING = "trans-de-en/usr/share/trans/de-en"
KJV = "sword-text-kjv/usr/share/sword/modules/texts/ztext/engKJV2006eb"
RV1909 = "sword-text-sparv/usr/share/sword/modules/texts/ztext/spaRV1909eb"
SAMPLE_PAIRS = 3000


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- Ding (de | de :: en | en)

# Ding's headword markup: {f} {vt} grammar tags, [coll.] [Br.] usage labels.
ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\])")
# Ding's placeholders: a German side ending in one is a phrase pattern, not a sentence.
PLACEHOLDERS = ("etw.", "jd.", "jdm.", "jdn.", "jds.", "sth.", "sb.", "sb.'s")


def ding_pairs(path):
    """Aligned alternatives whose German side is a sentence.

    A line is `de1 | de2 :: en1 | en2`: the k-th German alternative translates the k-th English
    one (lines whose counts differ are skipped). Within an alternative, '; ' separates synonyms:
    equal counts are paired one to one, otherwise every German synonym goes with the first
    English one. A German side is a sentence when, with annotations removed, it has at least
    3 words, ends in . ! or ?, has no grammar tag {..} and does not end in a placeholder (etw.,
    jdm., ...). Annotations are removed from both sides; exact repeats are written once.
    """
    pairs, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            sides = line.split(" :: ")
            if len(sides) != 2:
                continue
            de_alts, en_alts = sides[0].split(" | "), sides[1].split(" | ")
            if len(de_alts) != len(en_alts):
                continue
            for de_alt, en_alt in zip(de_alts, en_alts):
                de_syn, en_syn = de_alt.split("; "), en_alt.split("; ")
                if len(de_syn) != len(en_syn):
                    en_syn = [en_syn[0]] * len(de_syn)
                for de, en in zip(de_syn, en_syn):
                    if "{" in de:
                        continue
                    de = squash(ANNOTATION.sub("", de))
                    en = squash(ANNOTATION.sub("", en))
                    if not en or len(de.split()) < 3 or de[-1] not in ".!?" or de.split()[-1] in PLACEHOLDERS:
                        continue
                    if "\t" in de + en or (de, en) in seen:
                        continue
                    seen.add((de, en))
                    pairs.append((de, en))
    return pairs


# ---------------------------------------------------------------- SWORD zText Bibles

def ztext_entries(module_dir):
    """Every index entry of a zText module, in versification order (both testaments).

    .bzs: (offset, size, raw size) of each zlib block (a book here); .bzv: (block, offset in the
    uncompressed block, size) of each entry, 10 bytes; .bzz: the compressed blocks. The entries
    include module, testament, book and chapter headings, which are empty once titles go.
    """
    entries = []
    for testament in ("ot", "nt"):
        def read(ext):
            with open(os.path.join(module_dir, testament + ext), "rb") as f:
                return f.read()
        bzs, bzv, bzz = read(".bzs"), read(".bzv"), read(".bzz")
        blocks = []
        for i in range(len(bzs) // 12):
            off, size, _ = struct.unpack_from("<III", bzs, 12 * i)
            blocks.append(zlib.decompress(bzz[off:off + size]))
        for i in range(len(bzv) // 10):
            block, off, size = struct.unpack_from("<IIH", bzv, 10 * i)
            entries.append(blocks[block][off:off + size].decode("utf-8") if size else "")
    return entries


def osis_verse_text(markup):
    """One verse's OSIS markup as plain text: notes and titles dropped, other tags removed."""
    note = r"<note\b(?:(?!</note>).)*</note>"  # one note, never running into the next
    markup = re.sub(note + r"(?=<w\b)", " ", markup, flags=re.S)  # a note between words is a space
    markup = re.sub(note, "", markup, flags=re.S)
    markup = re.sub(r"<title\b.*?</title>", "", markup, flags=re.S)
    return squash(html.unescape(re.sub(r"<[^>]+>", "", markup)))


def bible_pairs(raw):
    """KJV and RV1909 share the KJV versification, so index entry i is the same verse in both."""
    en = ztext_entries(os.path.join(raw, KJV))
    es = ztext_entries(os.path.join(raw, RV1909))
    if len(en) != len(es):
        raise SystemExit("prepare_mt: KJV has %d index entries, RV1909 %d: not the same versification"
                         % (len(en), len(es)))
    pairs = []
    for a, b in zip(en, es):
        a, b = osis_verse_text(a), osis_verse_text(b)
        if a and b:
            pairs.append((a, b))
    return pairs


# ---------------------------------------------------------------- output

def write_tsv(path, pairs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for a, b in pairs:
            f.write(a + "\t" + b + "\n")
    os.replace(tmp, path)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def prepare(raw, out):
    ding = ding_pairs(os.path.join(raw, DING))
    write_tsv(os.path.join(out, "mt", "ding_de_en.tsv"), ding)
    bible = bible_pairs(raw)
    write_tsv(os.path.join(out, "mt", "kjv_rv1909.tsv"), bible)
    for name, pairs in (("ding_de_en.tsv", ding), ("kjv_rv1909.tsv", bible)):
        words = [sum(len(p[i].split()) for p in pairs) for i in (0, 1)]
        print("prepare_mt: mt/%s: %d pairs, %d / %d words" % (name, len(pairs), words[0], words[1]))


def sample(corpora, out):
    """The first SAMPLE_PAIRS Ding pairs by md5 of the pair, written in corpus order."""
    pairs = read_tsv(os.path.join(corpora, "mt", "ding_de_en.tsv"))
    key = {p: hashlib.md5((p[0] + "\t" + p[1]).encode("utf-8")).hexdigest() for p in pairs}
    chosen = set(sorted(pairs, key=lambda p: key[p])[:SAMPLE_PAIRS])
    write_tsv(os.path.join(out, "mt_de_en.tsv"), [p for p in pairs if p in chosen])


def main(argv):
    if len(argv) != 4 or argv[1] not in ("corpora", "sample"):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "corpora":
        prepare(argv[2], argv[3])
    else:
        sample(argv[2], argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
