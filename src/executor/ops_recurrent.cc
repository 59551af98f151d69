#include "executor/ops.h"

namespace reinit::exec {

void RegisterRecurrentOps(OpTable* table) { (void)table; }

}  // namespace reinit::exec
