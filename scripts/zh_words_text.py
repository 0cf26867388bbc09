#!/usr/bin/env python3
"""Chinese benchmark text without a corpus: lines of words drawn from jieba's
dictionary (dict.txt: "word freq [tag]") in proportion to their frequencies,
with a Chinese comma after about one word in ten and a full stop at the end
of each line. Seeded, so the same dictionary gives the same text.

    scripts/zh_words_text.py DICT LINES [SEED] > zh.txt
"""
import random
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, lines = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) == 4 else 1)
    words, weights = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 2:
                words.append(fields[0])
                weights.append(int(fields[1]))
    if not words:
        sys.exit(f"{path}: no 'word freq' lines")
    for _ in range(lines):
        out = []
        for word in rng.choices(words, weights, k=rng.randint(20, 60)):
            out.append(word)
            if rng.random() < 0.1:
                out.append("，")
        print("".join(out) + "。")


if __name__ == "__main__":
    main()
