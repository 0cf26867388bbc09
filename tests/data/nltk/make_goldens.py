#!/usr/bin/env python3
"""Writes the NLTK goldens the word-splitting tests compare against.

  treebank_words.jsonl  {"text", "words"}: nltk.word_tokenize(text, preserve_line=True)
  cmrc_segments.jsonl   {"text", "segments"}: CMRC 2018's scoring segmentation of
                        text (remove_punctuation=True), its English runs split by
                        the same word_tokenize

Needs Debian's python3-nltk (3.8); run it with that interpreter:
  /usr/bin/python3 tests/data/nltk/make_goldens.py
The texts are fixed hand-written cases plus seeded random mixtures of the
characters the rules treat specially, so the output is reproducible.
"""
import json
import os
import random
import re

import nltk
from nltk.tokenize import word_tokenize

HERE = os.path.dirname(os.path.abspath(__file__))

HAND = [
    "", " ", "hello", "Hello, world.", "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.",
    "They'll save and invest more.", "hi, my name can't hello,", "I cannot believe it's not butter!",
    "\"Quoted\" and 'single' and ``backticks'' here.", "He said: \"don't go\" (really?) [no] {yes} <maybe>",
    "U.S.A. is big. e.g. this... and that....", "3.5 km, 1,000 people; 50% @home #tag & more *stars*",
    "gonna gimme lemme gotta wanna d'ye more'n 'tis 'twas", "wanna", "wanna go", "Cannot CANNOT canNOT",
    "rock 'n' roll", "'a' 'b c' 'x", "it's 'm 's 'd 'n I'm we'd you've they're she'll ain't",
    "«guillemets» “curly” ‘single’ „low“", "a--b -- c---d", "end with colon:", "end with comma,",
    "comma,\n", "ends with quote.'", "ends with paren.)", "ends with bracket.] ", "trailing dots..",
    "question? exclamation! both?!", "tab\tseparated\ttext", "non\u00a0breaking\u2003spaces", "ünïcödé wörds, ok.",
    "snake_case and x_1, y_2.", "'Tis the season. 'TWAS the night.", "O'Neil's car's wheel", "don't DON'T Don't",
    "the 90's and '90s", "x'", "'", "''", "\"", "``", "...", ".", ",", ":", "a.b.c", ".hidden", "..start",
    "ratio 3:2 and 3: 2 and a:b", "price: $5,000.00.", "(parenthesised.)", "\"quote at end.\"",
    "I'M YOU'RE WE'VE THEY'LL ISN'T", "ye'll 'll 're", "'re 've", "mixed 'quote marks\" here'",
]

PIECES = ["can", "not", "cannot", "don't", "DON'T", "I'm", "we'll", "'tis", "'Twas", "gonna", "wanna", "gimme",
          "d'ye", "more'n", "U.S.", "3.88", "3,36", "e.g.", "it's", "'s", "'m", "'d", "n't", "'ll", "'re", "'ve",
          "x", "a", "word", "Mr.", "5", "10:30", "snake_case", "ünï", "ÉTÉ", "é", "ß", "Ω", "٣", "۲",
          ".", "..", "...", ",", ":", ";", "!", "?", "'", "''", "\"", "`", "``", "(", ")", "[", "]", "{", "}", "<",
          ">", "-", "--", "*", "@", "#", "$", "%", "&", "«", "»", "“", "”", "‘", "’", "„", "…", "/", "_"]
SPACES = [" ", " ", " ", " ", "", "", "\n", "\t", "\u00a0", "  "]


def random_text(rng, pieces, max_pieces=12):
    return "".join(rng.choice(pieces) + rng.choice(SPACES) for _ in range(rng.randint(1, max_pieces)))


def words(text):
    return word_tokenize(text, preserve_line=True)


# cmrc2018_evaluate.py's mixed_segmentation(text, rm_punc=True), with the
# word_tokenize above for the runs between hanzi.
SP_CHAR = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=', '，', '。', '：', '？', '！', '“', '”', '；', '’',
           '《', '》', '……', '·', '、', '「', '」', '（', '）', '－', '～', '『', '』']


def cmrc_segments(text):
    text = str(text).lower().strip()
    out, run = [], ""
    for ch in text:
        if ch in SP_CHAR:
            continue
        if re.search(r'[\u4e00-\u9fa5]', ch):
            if run:
                out.extend(words(run))
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(words(run))
    return out


def main():
    assert nltk.__version__ == "3.8", nltk.__version__
    rng = random.Random(20261205)
    texts = HAND + [random_text(rng, PIECES) for _ in range(3000)]
    with open(os.path.join(HERE, "treebank_words.jsonl"), "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t, "words": words(t)}, ensure_ascii=False) + "\n")
    hanzi = list("北京是中国的首都红楼梦全长公里模型旋转位置编码")
    cmrc_pieces = PIECES + hanzi * 3 + ["，", "。", "：", "？", "！", "《", "》", "、", "（", "）", "·", "……"]
    cmrc_hand = ["北京是首都", "  RoFormer-v2 模型 ", "3.5 km, 全长!", "《红楼梦》，", "他说\"don't\"。",
                 "U.S.A.的首都", "it's 北京's car.", "第1,000个。"]
    cmrc_texts = cmrc_hand + [random_text(rng, cmrc_pieces) for _ in range(1500)]
    with open(os.path.join(HERE, "cmrc_segments.jsonl"), "w", encoding="utf-8") as f:
        for t in cmrc_texts:
            f.write(json.dumps({"text": t, "segments": cmrc_segments(t)}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
