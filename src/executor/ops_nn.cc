#include "executor/ops.h"

namespace reinit::exec {

void RegisterNnOps(OpTable* table) { (void)table; }

}  // namespace reinit::exec
