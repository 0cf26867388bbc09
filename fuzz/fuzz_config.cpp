// libFuzzer: RoFormerConfig::from_json_text on arbitrary bytes must load or
// throw Error. A loaded config must validate, give a RoPE spec, and survive
// to_json_text -> from_json_text unchanged (what save + load does); the same
// bytes as overrides of a fixture config must apply or throw Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "roformer/config.h"
#include "roformer/error.h"
#include "roformer/rope.h"

using roformer::fuzz::require;

namespace {

void check_loaded(const roformer::RoFormerConfig& c) {
  c.validate();
  const roformer::RopeSpec spec = c.rope_spec();
  require(spec.head_dim == c.head_dim(), "rope_spec().head_dim == head_dim()");
  if (c.uses_rope()) {
    // A config that validates must not fail later, when the model builds its RoPE table.
    try {
      spec.validate();
    } catch (const roformer::Error&) {
      require(false, "a validated RoPE config gives a valid RopeSpec");
    }
  }
  require(c.embedding_dim() > 0 && c.head_dim() > 0, "positive derived sizes");
  // num_labels may ask for up to a million generated labels: the round trip
  // is linear in them but takes seconds under the sanitizers.
  if (c.num_labels() > 4096) return;
  const std::string saved = c.to_json_text();
  const roformer::RoFormerConfig again = roformer::RoFormerConfig::from_json_text(saved, "saved");
  require(again.to_json_text() == saved, "to_json_text round-trips through from_json_text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check_loaded(roformer::RoFormerConfig::from_json_text(text, "fuzz"));
  } catch (const roformer::Error&) {
  }
  try {
    static const roformer::RoFormerConfig base =
        roformer::RoFormerConfig::from_file(ROFORMER_FUZZ_TEST_DATA "/fixtures/roformer-tiny-tok/config.json");
    check_loaded(base.with_overrides(text));
  } catch (const roformer::Error&) {
  }
  return 0;
}
