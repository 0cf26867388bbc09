// The restricted pickle VM: what torch.save writes loads; forbidden globals,
// malformed streams and resource bombs end in roformer::Error naming the fault.
#include <gtest/gtest.h>

#include <string>

#include "io/torch_pickle.h"
#include "roformer/error.h"
#include "roformer/torch_checkpoint.h"
#include "torch_builder.h"

namespace roformer {
namespace {

using testing::Bytes;
using testing::FakeTensor;
using testing::PickleWriter;
using testing::state_dict_pickle;

io::TorchStateDict parse(const Bytes& b) { return io::parse_torch_pickle(b, "test.pkl"); }

void expect_pickle_error(const Bytes& b, const std::string& needle) {
  try {
    parse(b);
    FAIL() << "expected Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.pkl"), std::string::npos) << e.what();
  }
}

FakeTensor tensor(const std::string& name, Shape size, Shape stride, int64_t numel = 12, int64_t offset = 0,
                  const std::string& key = "0") {
  return FakeTensor{name, "FloatStorage", key, numel, offset, std::move(size), std::move(stride)};
}

TEST(TorchPickle, ParsesAStateDict) {
  const io::TorchStateDict d =
      parse(state_dict_pickle({tensor("a", {3, 4}, {4, 1}), tensor("b", {4}, {1}, 12, 8), tensor("c", {2}, {1}, 5, 0, "k")}));
  ASSERT_EQ(d.tensors.size(), 3u);
  ASSERT_EQ(d.storages.size(), 2u);  // "a" and "b" share storage "0"
  EXPECT_EQ(d.tensors[0].first, "a");
  EXPECT_EQ(d.tensors[1].second.offset, 8);
  EXPECT_EQ(d.tensors[0].second.storage, d.tensors[1].second.storage);
  EXPECT_EQ(d.storages[d.tensors[2].second.storage].key, "k");
  EXPECT_EQ(d.storages[0].dtype, "F32");
  EXPECT_EQ(d.storages[0].location, "cpu");
}

TEST(TorchPickle, RepeatedKeyKeepsFirstPositionAndLastValue) {
  const io::TorchStateDict d =
      parse(state_dict_pickle({tensor("a", {1}, {1}), tensor("b", {1}, {1}), tensor("a", {2}, {1})}));
  ASSERT_EQ(d.tensors.size(), 2u);
  EXPECT_EQ(d.tensors[0].first, "a");
  EXPECT_EQ(d.tensors[0].second.shape, Shape{2});
}

TEST(TorchPickle, ProtocolFourOpcodes) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINUNICODE8, LONG1, BININT with a negative value.
  PickleWriter p;
  p.proto(4).op(0x95).le(10, 8);
  p.op('}').op(0x94).op('(');
  p.op(0x8c).byte(1).raw("w");
  p.op(0x8c).byte(12).raw("torch._utils").op(0x94);
  p.op(0x8d).le(18, 8).raw("_rebuild_tensor_v2");
  p.op(0x93).op('(');
  p.op('(').str("storage").op(0x8c).byte(5).raw("torch");
  p.str("HalfStorage").op(0x93).str("0").str("cpu").op(0x8a).byte(1).byte(6).op('t').op('Q');
  const std::size_t at = p.size() + 1;
  p.op('J').le(0xffffffffu, 4);  // storage offset -1: must be rejected
  p.int_tuple({6}).int_tuple({1}).op(0x88).op('}').op('t').op('R').op('u').op('.');
  expect_pickle_error(p.bytes(), "negative storage offset");
  Bytes fixed = p.bytes();
  fixed[at] = fixed[at + 1] = fixed[at + 2] = fixed[at + 3] = 0;
  const io::TorchStateDict d = parse(fixed);
  ASSERT_EQ(d.tensors.size(), 1u);
  EXPECT_EQ(d.tensors[0].first, "w");
  EXPECT_EQ(d.storages[0].dtype, "F16");
  EXPECT_EQ(d.storages[0].numel, 6u);
}

TEST(TorchPickle, ForbiddenGlobalsAreNamed) {
  expect_pickle_error(PickleWriter().proto().global("os", "system").str("ls").op(0x85).op('R').op('.').bytes(),
               "forbidden global 'os.system'");
  expect_pickle_error(PickleWriter().proto().global("builtins", "eval").op('.').bytes(), "'builtins.eval'");
  expect_pickle_error(PickleWriter().proto().global("torch._utils", "_rebuild_qtensor").op('.').bytes(),
               "'torch._utils._rebuild_qtensor'");
  expect_pickle_error(PickleWriter().proto().global("torch", "load").op('.').bytes(), "'torch.load'");
  // STACK_GLOBAL takes its names from the stack.
  expect_pickle_error(PickleWriter().proto(4).str("subprocess").str("Popen").op(0x93).op('.').bytes(),
               "'subprocess.Popen'");
  // Whitelisted names that are not callable stay uncallable.
  expect_pickle_error(PickleWriter().proto().global("torch", "FloatStorage").op(')').op('R').op('.').bytes(),
               "cannot call torch.FloatStorage");
}

TEST(TorchPickle, ForbiddenGlobalInsideAnArchiveIsNamed) {
  Bytes pkl = PickleWriter().proto().op('}').global("posix", "system").str("echo pwned").op(0x85).op('R').op('.').bytes();
  try {
    TorchCheckpoint::from_bytes(testing::torch_archive(pkl, {}), "evil.bin");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("posix.system"), std::string::npos) << what;
    EXPECT_NE(what.find("evil.bin"), std::string::npos) << what;
  }
}

TEST(TorchPickle, MalformedStreams) {
  expect_pickle_error({}, "truncated");
  expect_pickle_error(PickleWriter().proto().op('}').bytes(), "truncated");  // no STOP
  expect_pickle_error(PickleWriter().proto().op('.').bytes(), "stack underflow");
  expect_pickle_error(PickleWriter().proto(6).op('.').bytes(), "protocol");
  expect_pickle_error(PickleWriter().proto().op(']').op('.').bytes(), "does not hold a dict");
  expect_pickle_error(PickleWriter().proto().op('}').str("x").integer(3).op('s').op('.').bytes(),
               "entry 'x' is not a tensor");
  expect_pickle_error(PickleWriter().proto().op('}').integer(1).op('}').op('s').op('.').bytes(), "key is not a string");
  expect_pickle_error(PickleWriter().proto().get(7).op('.').bytes(), "memo entry 7");
  expect_pickle_error(PickleWriter().proto().op(']').str("k").integer(1).op('s').op('.').bytes(), "not a dict");
  expect_pickle_error(PickleWriter().proto().op('}').integer(1).op('a').op('.').bytes(), "not a list");
  expect_pickle_error(PickleWriter().proto().op('}').op('(').integer(1).op('u').op('.').bytes(), "odd number");
  expect_pickle_error(PickleWriter().proto().op('}').op('t').op('.').bytes(), "no MARK");
  // Values below a MARK are out of reach until the MARK is closed.
  expect_pickle_error(PickleWriter().proto().integer(1).op('(').op(0x85).op('.').bytes(), "stack underflow");
  expect_pickle_error(PickleWriter().proto().op(0x8a).byte(9).bytes(), "wider than 64 bits");
  expect_pickle_error(PickleWriter().proto().op('X').byte(0xff).byte(0xff).byte(0xff).byte(0xff).bytes(), "exceeds the limit");
  expect_pickle_error(PickleWriter().proto().op('X').byte(0x10).byte(0).byte(0).byte(0).byte('a').bytes(), "truncated");
  expect_pickle_error(PickleWriter().proto().op('c').byte('o').byte('s').bytes(), "truncated");
  expect_pickle_error(PickleWriter().proto().op('I').op('.').bytes(), "unsupported pickle opcode 0x49");
  expect_pickle_error(PickleWriter().proto().integer(1).op(')').op('R').op('.').bytes(), "not a whitelisted global");
  expect_pickle_error(PickleWriter().proto().op(']').integer(1).op('b').op('.').bytes(), "BUILD");
  expect_pickle_error(PickleWriter().proto().op(0x95).byte(0xff).byte(0xff).byte(0).byte(0).byte(0).byte(0).byte(0).byte(0).bytes(),
               "FRAME");
}

TEST(TorchPickle, BadTensorsAndStorages) {
  expect_pickle_error(state_dict_pickle({tensor("t", {4, 4}, {4, 1})}), "reaches element 16 of storage '0' which holds 12");
  expect_pickle_error(state_dict_pickle({tensor("t", {3}, {1}, 12, 10)}), "reaches element 13");
  expect_pickle_error(state_dict_pickle({tensor("t", {0}, {1}, 12, 13)}), "reaches element 13");
  expect_pickle_error(state_dict_pickle({tensor("t", {3, 4}, {4})}), "differ in rank");
  expect_pickle_error(state_dict_pickle({tensor("t", {int64_t{1} << 62, 4}, {1, int64_t{1} << 62})}), "overflows");
  expect_pickle_error(state_dict_pickle({tensor("t", {2}, {1}, -1)}), "negative storage size");
  expect_pickle_error(state_dict_pickle({tensor("t", {2}, {1}, 12, 0, "../x")}), "bad storage key");
  expect_pickle_error(state_dict_pickle({tensor("a", {2}, {1}, 12), tensor("b", {2}, {1}, 13)}), "different types or sizes");
  FakeTensor t = tensor("t", {2}, {1});
  t.storage_type = "QInt8Storage";
  expect_pickle_error(state_dict_pickle({t}), "'torch.QInt8Storage'");
  // A persistent id that is not ('storage', type, key, location, numel).
  expect_pickle_error(PickleWriter().proto().str("x").op('Q').op('.').bytes(), "persistent id");
  expect_pickle_error(PickleWriter().proto().op('(').str("storage").op('t').op('Q').op('.').bytes(), "persistent id");
}

void expect_limit(const Bytes& b, const io::PickleLimits& limits, const std::string& needle) {
  try {
    io::parse_torch_pickle(b, "bomb.pkl", limits);
    FAIL() << "expected Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TorchPickle, ResourceBombsAreBounded) {
  io::PickleLimits small;
  small.max_stack = small.max_memo = small.max_objects = small.max_items = 1000;
  small.max_string = 100;
  PickleWriter deep, marks, memo, objects, doubling, self;
  deep.proto();
  marks.proto();
  memo.proto().op('N');
  objects.proto();
  doubling.proto().op(']').put(0);
  for (int i = 0; i < 1001; ++i) {
    deep.op('N');
    marks.op('(');
    memo.op('r').le(static_cast<uint64_t>(i) * 7919, 4);  // sparse indices: the memo is a map, not an array
    objects.op(')').op('0');                                // EMPTY_TUPLE, POP: garbage still counts
    doubling.get(0).op('a');  // a list appended to itself: a naive VM would copy it every time
  }
  expect_limit(deep.bytes(), small, "stack deeper than 1000");
  expect_limit(marks.bytes(), small, "too many MARKs");
  expect_limit(memo.bytes(), small, "memo larger than 1000");
  expect_limit(objects.bytes(), small, "more than 1000 objects");
  expect_limit(doubling.bytes(), small, "containers hold more than 1000 values");
  expect_limit(PickleWriter().proto().str(std::string(101, 'x')).op('.').bytes(), small, "exceeds the limit");
  // A list that contains itself is harmless: objects are indices, not owners (no leak, no recursion).
  self.proto().op(']').put(0).get(0).op('a').get(0).op('a').op('.');
  expect_pickle_error(self.bytes(), "does not hold a dict");
  // The default limits hold too.
  PickleWriter big;
  big.proto();
  for (int i = 0; i < (1 << 20) + 1; ++i) big.op('N');
  expect_pickle_error(big.bytes(), "stack deeper");
}

}  // namespace
}  // namespace roformer
