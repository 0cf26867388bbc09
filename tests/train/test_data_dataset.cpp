// The .rfds file: round trip, widths, atomic writing, hostile files, the
// content-hash split, and encoding the committed corpus sample.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "data_test_util.h"
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/text_corpus.h"
#include "train/sha256.h"

namespace roformer {
namespace {

using data_test::read_file;
using data_test::write_file;

Sha256Digest some_sha() { return data::sha256("vocab"); }

std::string write_small(const testing::TempDir& dir, int64_t vocab_size = 1000) {
  const std::string path = dir.file("small.rfds");
  DatasetWriter w(path, vocab_size, some_sha());
  w.add_document(std::vector<int64_t>{1, 2, 3});
  w.add_document(std::vector<int64_t>{});
  w.add_document(std::vector<int64_t>{vocab_size - 1, 0});
  w.finish();
  return path;
}

void expect_rejected(const std::string& path, const std::string& fragment) {
  try {
    TokenDataset::open(path);
    ADD_FAILURE() << "opened a bad file; expected an error mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(DataSha256, KnownVectors) {
  EXPECT_EQ(data::hex(data::sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(data::hex(data::sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(data::hex(data::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  data::Sha256 chunked;  // a million 'a's in uneven pieces
  const std::string piece(777, 'a');
  std::size_t left = 1000000;
  while (left > 0) {
    const std::size_t n = std::min(left, piece.size());
    chunked.update(piece.data(), n);
    left -= n;
  }
  EXPECT_EQ(data::hex(chunked.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DataDataset, RoundTripSixteenBit) {
  testing::TempDir dir;
  const auto path = write_small(dir);
  const auto ds = TokenDataset::open(path);
  EXPECT_EQ(ds.info().version, 1u);
  EXPECT_EQ(ds.info().token_bytes, 2);
  EXPECT_EQ(ds.vocab_size(), 1000);
  EXPECT_EQ(ds.documents(), 3);
  EXPECT_EQ(ds.tokens(), 5);
  EXPECT_EQ(ds.info().vocab_sha256, some_sha());
  EXPECT_EQ(ds.document(0), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(ds.document(1).empty());
  EXPECT_EQ(ds.document(2), (std::vector<int64_t>{999, 0}));
  int64_t two[2];
  ds.copy_tokens(0, 1, 2, two);
  EXPECT_EQ(two[0], 2);
  EXPECT_EQ(two[1], 3);
  EXPECT_THROW(ds.copy_tokens(0, 2, 2, two), Error);
  EXPECT_THROW(ds.document_length(3), Error);
  // 96-byte header + 5 ids * 2 bytes padded to 8 + 4 offsets * 8.
  EXPECT_EQ(std::filesystem::file_size(path), 96u + 16u + 32u);
  EXPECT_EQ(read_file(path).substr(0, 4), "RFDS");
}

TEST(DataDataset, ThirtyTwoBitForLargeVocabularies) {
  testing::TempDir dir;
  for (int64_t vocab : {int64_t{65536}, int64_t{65537}, int64_t{200000}}) {
    const auto path = write_small(dir, vocab);
    const auto ds = TokenDataset::open(path);
    EXPECT_EQ(ds.info().token_bytes, vocab <= 65536 ? 2 : 4) << vocab;
    EXPECT_EQ(ds.document(2)[0], vocab - 1);
  }
}

TEST(DataDataset, WriterRejectsBadIdsAndLeavesNothingBehind) {
  testing::TempDir dir;
  const std::string path = dir.file("x.rfds");
  {
    DatasetWriter w(path, 10, some_sha());
    w.add_document(std::vector<int64_t>{1, 2});
    EXPECT_THROW(w.add_document(std::vector<int64_t>{10}), Error);
    EXPECT_THROW(w.add_document(std::vector<int64_t>{-1}), Error);
    // Destroyed without finish(): no file, no temporary left over.
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_THROW(DatasetWriter(path, 0, some_sha()), Error);
  // An existing file is replaced only when the new one is complete.
  write_file(path, "old");
  {
    DatasetWriter w(path, 10, some_sha());
    w.add_document(std::vector<int64_t>{1});
    EXPECT_EQ(read_file(path), "old");
    w.finish();
  }
  EXPECT_EQ(TokenDataset::open(path).tokens(), 1);
}

TEST(DataDataset, HostileFilesAreRejected) {
  testing::TempDir dir;
  const auto good = read_file(write_small(dir));
  const std::string bad = dir.file("bad.rfds");
  auto with = [&](std::size_t offset, std::initializer_list<uint8_t> bytes) {
    std::string b = good;
    std::size_t i = offset;
    for (uint8_t x : bytes) b[i++] = static_cast<char>(x);
    write_file(bad, b);
  };
  write_file(bad, good.substr(0, 50));
  expect_rejected(bad, "truncated header");
  write_file(bad, "");
  expect_rejected(bad, "truncated header");
  write_file(bad, good.substr(0, good.size() - 1));
  expect_rejected(bad, "file size");
  write_file(bad, good + "x");
  expect_rejected(bad, "file size");
  with(0, {'R', 'F', 'D', 'X'});
  expect_rejected(bad, "magic");
  with(4, {2});
  expect_rejected(bad, "version");
  with(16, {3});
  expect_rejected(bad, "token width");
  with(8, {0, 0, 0, 0, 0, 0, 0, 0});
  expect_rejected(bad, "vocabulary size");
  with(8, {0, 0, 2, 0});  // 131072 with 16-bit tokens
  expect_rejected(bad, "16-bit");
  with(24, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F});
  expect_rejected(bad, "document count");
  with(32, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  expect_rejected(bad, "token count");
  with(32, {4});
  expect_rejected(bad, "offsets table position");
  with(88, {1});
  expect_rejected(bad, "reserved");
  const std::size_t table = 96 + 16;
  with(table, {1});
  expect_rejected(bad, "first document offset");
  with(table + 8, {4});  // document 0 ends at 4, document 1 at 3
  expect_rejected(bad, "ends before it starts");
  with(table + 24, {4});
  expect_rejected(bad, "last document offset");
  with(96, {0xE8, 0x03});  // id 1000 in a 1000-token vocabulary
  expect_rejected(bad, "has id 1000");
  EXPECT_NO_THROW(TokenDataset::open(bad, /*check_ids=*/false));
  expect_rejected(dir.file("missing.rfds"), "cannot open");
  expect_rejected(dir.path(), "not a regular file");
}

TEST(DataDataset, SplitByContentIsStableAndOrderFree) {
  testing::TempDir dir;
  const std::string a = dir.file("a.rfds"), b = dir.file("b.rfds");
  std::vector<std::vector<int64_t>> docs;
  for (int64_t d = 0; d < 400; ++d) docs.push_back({d, d * 7 % 100, 5});
  {
    DatasetWriter wa(a, 500, some_sha()), wb(b, 500, some_sha());
    for (const auto& d : docs) wa.add_document(d);
    for (auto it = docs.rbegin(); it != docs.rend(); ++it) wb.add_document(*it);
    wa.finish();
    wb.finish();
  }
  const auto da = TokenDataset::open(a), db = TokenDataset::open(b);
  const auto sa = split_documents(da, 0.1, 7), sb = split_documents(db, 0.1, 7);
  EXPECT_EQ(sa.train.size() + sa.valid.size(), 400u);
  EXPECT_NEAR(static_cast<double>(sa.valid.size()), 40.0, 20.0);
  // Same documents on the validation side, whatever their position in the file.
  std::set<std::vector<int64_t>> va, vb;
  for (int64_t d : sa.valid) va.insert(da.document(d));
  for (int64_t d : sb.valid) vb.insert(db.document(d));
  EXPECT_EQ(va, vb);
  EXPECT_NE(split_documents(da, 0.1, 8).valid, sa.valid) << "the seed picks another split";
  EXPECT_TRUE(split_documents(da, 0.0).valid.empty());
  EXPECT_TRUE(split_documents(da, 1.0).train.empty());
  EXPECT_THROW(split_documents(da, 1.5), Error);
}

TEST(DataDataset, TextCorpusReaderFindsDocuments) {
  testing::TempDir dir;
  const std::string path = dir.file("c.txt");
  write_file(path, "\n\npara one\r\npara two\n \n\t\nsecond doc\n\nthird");
  TextCorpusReader r(path);
  std::vector<std::string> p;
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p, (std::vector<std::string>{"para one", "para two"}));
  EXPECT_EQ(r.document_line(), 3);
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p, (std::vector<std::string>{"second doc"}));
  EXPECT_EQ(r.document_line(), 7);
  ASSERT_TRUE(r.next(p));
  EXPECT_EQ(p, (std::vector<std::string>{"third"}));
  EXPECT_FALSE(r.next(p));
  write_file(path, std::string(10000, 'x') + "\nshort\n");
  TextCorpusReader limited(path, 5000);
  EXPECT_THROW(limited.next(p), Error);
  TextCorpusReader long_ok(path);
  ASSERT_TRUE(long_ok.next(p));
  EXPECT_EQ(p[0].size(), 10000u);
  EXPECT_EQ(p[1], "short");
}

TEST(DataDataset, EncodesTheSampleCorpus) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string vocab = dir.file("vocab.txt"), out = dir.file("en.rfds");
  write_file(vocab, data_test::sample_vocab_text());
  const auto stats = encode_corpus(tok, sha256_file(vocab), data_test::sample_path("en_valid.txt"), out);
  EXPECT_GT(stats.documents, 3);
  EXPECT_GT(stats.tokens, 10000);
  EXPECT_EQ(sha256_hex(sha256_file(vocab)), data::hex(data::sha256(data_test::sample_vocab_text())));
  const auto ds = TokenDataset::open(out);
  EXPECT_EQ(ds.documents(), stats.documents);
  EXPECT_EQ(ds.tokens(), stats.tokens);
  EXPECT_EQ(ds.vocab_size(), 2000);
  EXPECT_EQ(ds.info().vocab_sha256, sha256_file(vocab));
  // Document 0 is the first document's paragraphs, tokenized and concatenated.
  TextCorpusReader reader(data_test::sample_path("en_valid.txt"));
  std::vector<std::string> paragraphs;
  ASSERT_TRUE(reader.next(paragraphs));
  std::vector<int64_t> expected;
  for (const auto& p : paragraphs) {
    for (const auto& t : tok.tokenize(p)) expected.push_back(tok.token_to_id(t));
  }
  EXPECT_EQ(ds.document(0), expected);
  // Invalid UTF-8 is reported with its line.
  const std::string bad = dir.file("bad.txt");
  write_file(bad, "fine\n\nalso fine\nbroken \xff here\n");
  try {
    encode_corpus(tok, sha256_file(vocab), bad, dir.file("bad.rfds"));
    ADD_FAILURE() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:4"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.rfds")));
}

TEST(DataDataset, EncodingOnSeveralThreadsWritesTheSameFile) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string vocab = dir.file("vocab.txt");
  write_file(vocab, data_test::sample_vocab_text());
  // The sample's paragraphs twice over in documents of 1 to 7 paragraphs:
  // over 4096 paragraphs, so the encoder's batches end inside the corpus.
  TextCorpusReader reader(data_test::sample_path("en_train.txt"));
  std::vector<std::string> all, paragraphs;
  while (reader.next(paragraphs)) all.insert(all.end(), paragraphs.begin(), paragraphs.end());
  ASSERT_GT(all.size(), 1000u);
  std::string corpus;
  int64_t documents = 0;
  std::size_t in_doc = 0;
  for (std::size_t i = 0; i < 2 * all.size() + 1000; ++i) {
    corpus += all[i % all.size()] + "\n";
    if (++in_doc == 1 + i % 7) {
      corpus += "\n";
      in_doc = 0;
      ++documents;
    }
  }
  if (in_doc > 0) ++documents;
  const std::string text = dir.file("corpus.txt");
  write_file(text, corpus);
  const auto one = encode_corpus(tok, sha256_file(vocab), text, dir.file("one.rfds"), 1);
  for (int threads : {2, 3}) {
    const std::string out = dir.file(std::to_string(threads) + ".rfds");
    const auto many = encode_corpus(tok, sha256_file(vocab), text, out, threads);
    EXPECT_EQ(many.tokens, one.tokens);
    EXPECT_EQ(many.unknown, one.unknown);
    EXPECT_EQ(read_file(out), read_file(dir.file("one.rfds"))) << threads << " threads";
  }
  EXPECT_EQ(one.documents, documents);
  // A bad line in a later batch is reported with its own line number, and
  // the first of two is the one reported.
  const int64_t lines = static_cast<int64_t>(std::count(corpus.begin(), corpus.end(), '\n'));
  const std::string bad = dir.file("bad.txt");
  write_file(bad, corpus + "fine\nbroken \xff here\nfine\n\xfe\n");
  for (int threads : {1, 2}) {
    try {
      encode_corpus(tok, sha256_file(vocab), bad, dir.file("bad.rfds"), threads);
      ADD_FAILURE() << "invalid UTF-8 accepted";
    } catch (const Error& e) {
      const std::string want = "bad.txt:" + std::to_string(lines + 2) + ":";
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what() << " (want " << want << ")";
    }
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.rfds")));
  }
}

}  // namespace
}  // namespace roformer
