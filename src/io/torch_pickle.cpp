#include "io/torch_pickle.h"

#include <cstring>
#include <optional>
#include <unordered_map>

#include "roformer/error.h"

namespace roformer::io {
namespace {

constexpr std::size_t kMaxRank = 32;

// What a whitelisted global stands for.
enum class Callable : uint8_t { OrderedDict, RebuildTensorV2, RebuildParameter, RebuildParameterWithState, Storage };

struct Global {
  Callable callable;
  const char* dtype;  // storage types only
};

std::optional<Global> whitelisted(const std::string& module, const std::string& name) {
  if (module == "collections" && name == "OrderedDict") return Global{Callable::OrderedDict, nullptr};
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") return Global{Callable::RebuildTensorV2, nullptr};
    if (name == "_rebuild_parameter") return Global{Callable::RebuildParameter, nullptr};
    if (name == "_rebuild_parameter_with_state") return Global{Callable::RebuildParameterWithState, nullptr};
  }
  if (module == "torch") {
    static const std::pair<const char*, const char*> kStorages[] = {
        {"FloatStorage", "F32"}, {"HalfStorage", "F16"},  {"BFloat16Storage", "BF16"}, {"DoubleStorage", "F64"},
        {"LongStorage", "I64"},  {"IntStorage", "I32"},   {"ShortStorage", "I16"},     {"CharStorage", "I8"},
        {"ByteStorage", "U8"},   {"BoolStorage", "BOOL"}};
    for (const auto& [storage, dtype] : kStorages)
      if (name == storage) return Global{Callable::Storage, dtype};
  }
  return std::nullopt;
}

enum class Kind : uint8_t { None, Bool, Int, Float, Object };

// A stack/memo slot. Containers live in the VM's object table and are
// referred to by index, so shared and even cyclic references are harmless.
struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;  // Bool, Int, or object index
  double f = 0;
};

enum class ObjKind : uint8_t { Str, Tuple, List, Dict, Global, Storage, Tensor };

struct Object {
  ObjKind kind;
  std::string text;           // Str: the string; Global: "module.name"
  std::vector<Value> items;   // Tuple, List; Dict: key, value, key, value, ...
  std::size_t index = 0;      // Storage / Tensor: index into the result
  Global global{Callable::OrderedDict, nullptr};
};

class Vm {
 public:
  Vm(std::span<const uint8_t> pickle, const std::string& label, const PickleLimits& limits)
      : p_(pickle), label_(label), lim_(limits) {}
  TorchStateDict run();

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(label_ + ": pickle byte " + std::to_string(op_pos_) + ": " + why);
  }

  // --- reading the opcode stream ---
  const uint8_t* take(uint64_t n) {
    if (n > p_.size() - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes)");
    const uint8_t* q = p_.data() + pos_;
    pos_ += static_cast<std::size_t>(n);
    return q;
  }
  uint64_t le(int bytes) {
    const uint8_t* q = take(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int k = bytes; k-- > 0;) v = v << 8 | q[k];
    return v;
  }
  std::string line() {
    std::string s;
    for (;;) {
      const char c = static_cast<char>(*take(1));
      if (c == '\n') return s;
      if (s.size() >= 256) fail("GLOBAL name too long");
      s += c;
    }
  }

  // --- the stack ---
  std::size_t mark_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) {
    if (stack_.size() >= lim_.max_stack) fail("stack deeper than " + std::to_string(lim_.max_stack));
    stack_.push_back(v);
  }
  Value pop() {
    if (stack_.size() <= mark_base()) fail("stack underflow");
    Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= mark_base()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const std::size_t base = marks_.back();
    marks_.pop_back();
    std::vector<Value> out(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return out;
  }

  // --- objects ---
  Value make(Object o) {
    if (objects_.size() >= lim_.max_objects) fail("more than " + std::to_string(lim_.max_objects) + " objects");
    items_ += o.items.size();
    if (items_ > lim_.max_items) fail("containers hold more than " + std::to_string(lim_.max_items) + " values");
    objects_.push_back(std::move(o));
    return Value{Kind::Object, static_cast<int64_t>(objects_.size() - 1), 0};
  }
  Object* as(const Value& v, ObjKind kind) {
    if (v.kind != Kind::Object) return nullptr;
    Object& o = objects_[static_cast<std::size_t>(v.i)];
    return o.kind == kind ? &o : nullptr;
  }
  Object& expect(const Value& v, ObjKind kind, const std::string& what) {
    Object* o = as(v, kind);
    if (!o) fail(what);
    return *o;
  }
  void add_items(Object& container, const std::vector<Value>& values) {
    items_ += values.size();
    if (items_ > lim_.max_items) fail("containers hold more than " + std::to_string(lim_.max_items) + " values");
    container.items.insert(container.items.end(), values.begin(), values.end());
  }
  Value string_value(uint64_t n) {
    if (n > lim_.max_string) fail("string of " + std::to_string(n) + " bytes exceeds the limit");
    const uint8_t* q = take(n);
    Object o{ObjKind::Str, std::string(reinterpret_cast<const char*>(q), static_cast<std::size_t>(n)), {}, 0, {}};
    return make(std::move(o));
  }
  int64_t int_arg(const Value& v, const std::string& what) {
    if (v.kind != Kind::Int) fail(what + " must be an integer");
    return v.i;
  }
  Shape int_tuple(const Value& v, const std::string& what) {
    const Object& o = expect(v, ObjKind::Tuple, what + " must be a tuple of integers");
    if (o.items.size() > kMaxRank) fail(what + " has more than " + std::to_string(kMaxRank) + " dimensions");
    Shape out;
    for (const Value& x : o.items) {
      const int64_t d = int_arg(x, what + " entry");
      if (d < 0) fail(what + " has a negative entry");
      out.push_back(d);
    }
    return out;
  }

  void memo_put(uint64_t index) {
    if (memo_.size() >= lim_.max_memo && !memo_.count(index)) fail("memo larger than " + std::to_string(lim_.max_memo));
    memo_[index] = top();
  }
  Value memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    return it->second;
  }

  void op_global(const std::string& module, const std::string& name);
  void op_reduce();
  void op_build();
  void op_persid();
  Value rebuild_tensor(const std::vector<Value>& args);
  TorchStateDict result(const Value& v);

  std::span<const uint8_t> p_;
  const std::string& label_;
  const PickleLimits lim_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<Object> objects_;
  std::size_t items_ = 0;
  TorchStateDict out_;
  std::unordered_map<std::string, std::size_t> storage_by_key_;
};

void Vm::op_global(const std::string& module, const std::string& name) {
  const std::optional<Global> g = whitelisted(module, name);
  if (!g) fail("forbidden global '" + module + "." + name + "' (only torch state-dict globals are allowed)");
  Object o{ObjKind::Global, module + "." + name, {}, 0, *g};
  push(make(std::move(o)));
}

void Vm::op_reduce() {
  const Value args_v = pop();
  const Value fn_v = pop();
  const Object& fn = expect(fn_v, ObjKind::Global, "REDUCE of something that is not a whitelisted global");
  const std::vector<Value> args = expect(args_v, ObjKind::Tuple, "REDUCE arguments are not a tuple").items;
  switch (fn.global.callable) {
    case Callable::OrderedDict:
      if (!args.empty()) fail("OrderedDict called with arguments");
      push(make(Object{ObjKind::Dict, {}, {}, 0, {}}));
      return;
    case Callable::RebuildTensorV2:
      push(rebuild_tensor(args));
      return;
    case Callable::RebuildParameter:
    case Callable::RebuildParameterWithState: {
      const std::size_t want = fn.global.callable == Callable::RebuildParameter ? 3 : 4;
      if (args.size() != want || !as(args[0], ObjKind::Tensor))
        fail(fn.text + " expects (tensor, requires_grad, hooks" + (want == 4 ? ", state)" : ")"));
      push(args[0]);  // a parameter is its data tensor
      return;
    }
    case Callable::Storage:
      break;
  }
  fail("cannot call " + fn.text);
}

void Vm::op_build() {
  pop();  // the state
  const Value& target = top();
  // OrderedDict state dicts carry a _metadata attribute (layer versions); it does not affect the weights.
  if (!as(target, ObjKind::Dict)) fail("BUILD on something other than an OrderedDict");
}

void Vm::op_persid() {
  const Value pid_v = pop();
  const std::vector<Value>& pid =
      expect(pid_v, ObjKind::Tuple, "persistent id is not a tuple").items;
  const Object* tag = pid.size() == 5 ? as(pid[0], ObjKind::Str) : nullptr;
  if (!tag || tag->text != "storage")
    fail("persistent id is not ('storage', type, key, location, numel)");
  const Object* type = as(pid[1], ObjKind::Global);
  if (!type || type->global.callable != Callable::Storage) fail("persistent id names no torch storage type");
  const Object* key = as(pid[2], ObjKind::Str);
  const Object* location = as(pid[3], ObjKind::Str);
  if (!key || !location) fail("persistent id key and location must be strings");
  if (key->text.empty() || key->text.size() > 64 || key->text.find('/') != std::string::npos)
    fail("bad storage key '" + key->text + "'");
  const int64_t numel = int_arg(pid[4], "storage size");
  if (numel < 0) fail("negative storage size");
  TorchStorage s{key->text, type->global.dtype, static_cast<uint64_t>(numel), location->text};
  auto [it, fresh] = storage_by_key_.emplace(s.key, out_.storages.size());
  if (fresh) {
    out_.storages.push_back(std::move(s));
  } else {
    // Tied weights refer to one storage several times; every reference must agree.
    const TorchStorage& old = out_.storages[it->second];
    if (old.dtype != s.dtype || old.numel != s.numel)
      fail("storage '" + s.key + "' is referred to with different types or sizes");
  }
  push(make(Object{ObjKind::Storage, {}, {}, it->second, {}}));
}

Value Vm::rebuild_tensor(const std::vector<Value>& args) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.size() != 6 && args.size() != 7) fail("_rebuild_tensor_v2 expects 6 or 7 arguments");
  const Object& storage_obj = expect(args[0], ObjKind::Storage, "_rebuild_tensor_v2: first argument is not a storage");
  TorchTensorRef t;
  t.storage = storage_obj.index;
  t.offset = int_arg(args[1], "storage offset");
  t.shape = int_tuple(args[2], "tensor size");
  t.strides = int_tuple(args[3], "tensor stride");
  if (t.offset < 0) fail("negative storage offset");
  if (t.shape.size() != t.strides.size()) fail("tensor size and stride differ in rank");
  if (args[4].kind != Kind::Bool) fail("requires_grad must be a bool");
  // The last element lies at offset + sum((size - 1) * stride); it must be inside the storage.
  const TorchStorage& s = out_.storages[t.storage];
  bool empty = false;
  int64_t last = t.offset;
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] == 0) empty = true;
    int64_t step = 0;
    if (t.shape[d] > 0 && (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &step) ||
                           __builtin_add_overflow(last, step, &last)))
      fail("tensor extent overflows");
  }
  const uint64_t needed = empty ? static_cast<uint64_t>(t.offset) : static_cast<uint64_t>(last) + 1;
  if (needed > s.numel)
    fail("tensor " + shape_str(t.shape) + " at offset " + std::to_string(t.offset) + " reaches element " +
         std::to_string(needed) + " of storage '" + s.key + "' which holds " + std::to_string(s.numel));
  out_.tensors.emplace_back(std::string(), std::move(t));
  return make(Object{ObjKind::Tensor, {}, {}, out_.tensors.size() - 1, {}});
}

TorchStateDict Vm::result(const Value& v) {
  const Object* dict = as(v, ObjKind::Dict);
  if (!dict) fail("the pickle does not hold a dict of tensors (a state dict)");
  // Python dict semantics: a repeated key keeps its first position and its last value.
  std::vector<std::pair<std::string, TorchTensorRef>> tensors;
  std::unordered_map<std::string, std::size_t> seen;
  for (std::size_t k = 0; k + 1 < dict->items.size(); k += 2) {
    const Object* key = as(dict->items[k], ObjKind::Str);
    if (!key) fail("state dict key is not a string");
    const Object* value = as(dict->items[k + 1], ObjKind::Tensor);
    if (!value) fail("state dict entry '" + key->text + "' is not a tensor");
    auto [it, fresh] = seen.emplace(key->text, tensors.size());
    if (fresh) tensors.emplace_back(key->text, out_.tensors[value->index].second);
    else tensors[it->second].second = out_.tensors[value->index].second;
  }
  TorchStateDict r;
  r.storages = std::move(out_.storages);
  r.tensors = std::move(tensors);
  return r;
}

TorchStateDict Vm::run() {
  for (;;) {
    op_pos_ = pos_;
    const uint8_t op = *take(1);
    switch (op) {
      case 0x80:  // PROTO
        if (*take(1) > 5) fail("pickle protocol above 5");
        break;
      case 0x95:  // FRAME: a length prefix only; the framed opcodes follow inline
        if (le(8) > p_.size() - pos_) fail("FRAME longer than the pickle");
        break;
      case '}': push(make(Object{ObjKind::Dict, {}, {}, 0, {}})); break;   // EMPTY_DICT
      case ']': push(make(Object{ObjKind::List, {}, {}, 0, {}})); break;   // EMPTY_LIST
      case ')': push(make(Object{ObjKind::Tuple, {}, {}, 0, {}})); break;  // EMPTY_TUPLE
      case '(':                                                              // MARK
        if (marks_.size() >= lim_.max_stack) fail("too many MARKs");
        marks_.push_back(stack_.size());
        break;
      case 't':  // TUPLE
        push(make(Object{ObjKind::Tuple, {}, pop_to_mark(), 0, {}}));
        break;
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<Value> items(static_cast<std::size_t>(op - 0x84));
        for (std::size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(make(Object{ObjKind::Tuple, {}, std::move(items), 0, {}}));
        break;
      }
      case 'X': push(string_value(le(4))); break;   // BINUNICODE
      case 0x8c: push(string_value(le(1))); break;  // SHORT_BINUNICODE
      case 0x8d: push(string_value(le(8))); break;  // BINUNICODE8
      case 'J': push(Value{Kind::Int, static_cast<int32_t>(static_cast<uint32_t>(le(4))), 0}); break;  // BININT
      case 'K': push(Value{Kind::Int, static_cast<int64_t>(le(1)), 0}); break;  // BININT1
      case 'M': push(Value{Kind::Int, static_cast<int64_t>(le(2)), 0}); break;  // BININT2
      case 0x8a: case 0x8b: {  // LONG1, LONG4: little-endian two's complement
        const uint64_t n = le(op == 0x8a ? 1 : 4);
        if (n > 8) fail("integer wider than 64 bits");
        uint64_t v = n ? le(static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && ((v >> (8 * n - 1)) & 1)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(Value{Kind::Int, static_cast<int64_t>(v), 0});
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* q = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = bits << 8 | q[k];
        double d;
        std::memcpy(&d, &bits, 8);
        push(Value{Kind::Float, 0, d});
        break;
      }
      case 0x88: push(Value{Kind::Bool, 1, 0}); break;  // NEWTRUE
      case 0x89: push(Value{Kind::Bool, 0, 0}); break;  // NEWFALSE
      case 'N': push(Value{}); break;                   // NONE
      case 'q': memo_put(le(1)); break;                 // BINPUT
      case 'r': memo_put(le(4)); break;                 // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;         // MEMOIZE
      case 'h': push(memo_get(le(1))); break;           // BINGET
      case 'j': push(memo_get(le(4))); break;           // LONG_BINGET
      case '0': pop(); break;                           // POP
      case '1': pop_to_mark(); break;                   // POP_MARK
      case 's': case 'u': {  // SETITEM, SETITEMS
        std::vector<Value> kv;
        if (op == 's') {
          const Value v = pop();
          kv = {pop(), v};
        } else {
          kv = pop_to_mark();
        }
        if (kv.size() % 2) fail("SETITEMS with an odd number of values");
        add_items(expect(top(), ObjKind::Dict, "SETITEM on something that is not a dict"), kv);
        break;
      }
      case 'a': case 'e': {  // APPEND, APPENDS
        std::vector<Value> vs;
        if (op == 'a') vs = {pop()};
        else vs = pop_to_mark();
        add_items(expect(top(), ObjKind::List, "APPEND on something that is not a list"), vs);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        op_global(module, line());
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const Value name = pop();
        const Value module = pop();
        const Object* m = as(module, ObjKind::Str);
        const Object* n = as(name, ObjKind::Str);
        if (!m || !n) fail("STACK_GLOBAL needs two strings");
        op_global(m->text, n->text);
        break;
      }
      case 'R': op_reduce(); break;      // REDUCE
      case 'b': op_build(); break;       // BUILD
      case 'Q': op_persid(); break;      // BINPERSID
      case '.': return result(pop());    // STOP
      default: {
        static const char* kHex = "0123456789abcdef";
        fail(std::string("unsupported pickle opcode 0x") + kHex[op >> 4] + kHex[op & 15]);
      }
    }
  }
}

}  // namespace

std::size_t torch_dtype_size(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

TorchStateDict parse_torch_pickle(std::span<const uint8_t> pickle, const std::string& label,
                                  const PickleLimits& limits) {
  Vm vm(pickle, label, limits);
  return vm.run();
}

}  // namespace roformer::io
