#include "executor/ops.h"

namespace reinit::exec {

void RegisterShapeOps(OpTable* table) { (void)table; }

}  // namespace reinit::exec
