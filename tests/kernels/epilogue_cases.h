#pragma once
// Every epilogue a product can fuse: no activation or each one, with and
// without the residual add, with a name for failure messages.
#include <string>
#include <vector>

#include "kernels/epilogue.h"

namespace roformer::kernels {

struct EpilogueCase {
  Epilogue epilogue;
  std::string name;
};

inline std::vector<EpilogueCase> every_epilogue(const float* residual) {
  std::vector<EpilogueCase> cases;
  for (int act = -1; act < 3; ++act)
    for (bool with_residual : {false, true}) {
      EpilogueCase c;
      if (act >= 0) c.epilogue.activation = static_cast<Activation>(act);
      if (with_residual) c.epilogue.residual = residual;
      c.name = "act=" + std::to_string(act) + " residual=" + std::to_string(with_residual);
      cases.push_back(c);
    }
  return cases;
}

}  // namespace roformer::kernels
