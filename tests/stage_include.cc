// The ctests stage_include_* (tests/CMakeLists.txt) compile this file, syntax only, with one
// stage library's include flags and STAGE_HEADER, a header of src/ named as src/ names it
// (-DSTAGE_HEADER=signal/propagate.h): it must build for a header of that stage or below, and
// fail for one above, since the build gives each stage only its own folder and the lower ones.
#define REINIT_STRINGIZE(x) #x
#define REINIT_HEADER_NAME(x) REINIT_STRINGIZE(x)
#include REINIT_HEADER_NAME(STAGE_HEADER)
