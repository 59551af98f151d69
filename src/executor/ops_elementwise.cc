#include "executor/ops.h"

namespace reinit::exec {

void RegisterElementwiseOps(OpTable* table) { (void)table; }

}  // namespace reinit::exec
