# The ONNX C++ library (checker, shape inference, the op schemas, the protobuf classes).
#
# reinit needs ONNX >= REINIT_ONNX_MIN (opset 23, IR 11; the INT4/FLOAT8/FLOAT4 tensor types).
# A system ONNX that new is used as it is. Otherwise (Debian 12's libonnx-dev is 1.12: opset 17,
# IR 8) the build makes its own, once: the source distribution of ONNX REINIT_ONNX_VERSION from
# PyPI (checked against its SHA-256), built against the system's protobuf as a static,
# position-independent library and installed into a cache outside the build tree,
#   ${REINIT_ONNX_CACHE}/onnx-<version>-protobuf-<protobuf version>/
# (REINIT_ONNX_CACHE: $XDG_CACHE_HOME/reinit or ~/.cache/reinit), so that a second build tree, a
# `pip install .` or a fresh `build/` finds it there and costs nothing. The first build takes
# about a minute on 2 cores (ONNX_USE_UNITY_BUILD). ONNX's CMake needs 3.26: an older cmake
# running this project builds it with one found as REINIT_ONNX_CMAKE, in the setup's .venv/bin
# (PyPI's cmake), or on PATH. REINIT_ONNX_SDIST names a local copy of the sdist instead.
#
# Defines REINIT_ONNX_TARGETS (the onnx and onnx_proto targets, whichever spelling the package
# exports) and REINIT_ONNX_FOUND_VERSION.

set(REINIT_ONNX_MIN 1.18)
set(REINIT_ONNX_VERSION 1.23.2)
set(REINIT_ONNX_SHA256 008cb0467b2bbee41448acc7da8b6f4e704624cb0d327a2d5adafc7ce19bc5b8)
set(REINIT_ONNX_URL "https://files.pythonhosted.org/packages/3f/62/bc2dfadb63ecf04cb2d65a6b17751863039d36c65de51d6a3128ab35f1e7/onnx-${REINIT_ONNX_VERSION}.tar.gz")

if(DEFINED ENV{XDG_CACHE_HOME} AND NOT "$ENV{XDG_CACHE_HOME}" STREQUAL "")
  set(reinit_cache_default "$ENV{XDG_CACHE_HOME}/reinit")
else()
  set(reinit_cache_default "$ENV{HOME}/.cache/reinit")
endif()
set(REINIT_ONNX_CACHE "${reinit_cache_default}" CACHE PATH
    "Where the ONNX library built from its PyPI sdist is kept")
set(REINIT_ONNX_SDIST "" CACHE FILEPATH "A local onnx-${REINIT_ONNX_VERSION}.tar.gz (else PyPI)")
option(REINIT_SYSTEM_ONNX "Use a system ONNX when it is >= ${REINIT_ONNX_MIN}" ON)

# A cmake >= 3.26 for ONNX's own build.
function(reinit_onnx_cmake out)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.26)
    set(${out} "${CMAKE_COMMAND}" PARENT_SCOPE)
    return()
  endif()
  set(candidates "${REINIT_ONNX_CMAKE}" "${PROJECT_SOURCE_DIR}/.venv/bin/cmake")
  find_program(reinit_path_cmake cmake)
  list(APPEND candidates "${reinit_path_cmake}")
  foreach(c IN LISTS candidates)
    if(c AND EXISTS "${c}")
      execute_process(COMMAND "${c}" --version OUTPUT_VARIABLE v ERROR_QUIET)
      string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?" v "${v}")
      if(v VERSION_GREATER_EQUAL 3.26)
        set(${out} "${c}" PARENT_SCOPE)
        return()
      endif()
    endif()
  endforeach()
  message(FATAL_ERROR "reinit: building ONNX ${REINIT_ONNX_VERSION} needs CMake >= 3.26 (this is "
          "${CMAKE_VERSION}): run .ci/setup (it puts PyPI's cmake in .venv/bin), or "
          "`pip install cmake` and pass -DREINIT_ONNX_CMAKE=<its path>")
endfunction()

# Configures, builds and installs ONNX into `prefix`, from the sdist; atomic (a partial build is
# never taken for a finished one) and locked against a second configure doing the same.
function(reinit_build_onnx prefix)
  reinit_onnx_cmake(onnx_cmake)
  set(work "${REINIT_ONNX_CACHE}/work-${REINIT_ONNX_VERSION}")
  file(MAKE_DIRECTORY "${REINIT_ONNX_CACHE}")
  file(LOCK "${REINIT_ONNX_CACHE}/onnx.lock" GUARD FUNCTION TIMEOUT 1800)
  if(EXISTS "${prefix}/lib/cmake/ONNX/ONNXConfig.cmake")
    return()  # another configure finished it while this one waited
  endif()
  set(sdist "${REINIT_ONNX_SDIST}")
  if(NOT sdist)
    set(sdist "${REINIT_ONNX_CACHE}/onnx-${REINIT_ONNX_VERSION}.tar.gz")
    if(NOT EXISTS "${sdist}")
      message(STATUS "reinit: downloading ${REINIT_ONNX_URL}")
      file(DOWNLOAD "${REINIT_ONNX_URL}" "${sdist}.part" STATUS st
           EXPECTED_HASH SHA256=${REINIT_ONNX_SHA256} TLS_VERIFY ON)
      list(GET st 0 code)
      if(NOT code EQUAL 0)
        file(REMOVE "${sdist}.part")
        message(FATAL_ERROR "reinit: could not download the ONNX sdist from PyPI: ${st}")
      endif()
      file(RENAME "${sdist}.part" "${sdist}")
    endif()
  endif()
  file(SHA256 "${sdist}" got)
  if(NOT got STREQUAL REINIT_ONNX_SHA256)
    message(FATAL_ERROR "reinit: ${sdist} has SHA-256 ${got}, not ${REINIT_ONNX_SHA256}")
  endif()
  file(REMOVE_RECURSE "${work}")
  file(ARCHIVE_EXTRACT INPUT "${sdist}" DESTINATION "${work}")
  set(src "${work}/onnx-${REINIT_ONNX_VERSION}")
  cmake_host_system_information(RESULT ncpu QUERY NUMBER_OF_LOGICAL_CORES)
  message(STATUS "reinit: building ONNX ${REINIT_ONNX_VERSION} against protobuf "
          "${Protobuf_VERSION} into ${prefix} (once; about 1 min on 2 cores, a unity build)")
  set(gen)
  if(CMAKE_GENERATOR STREQUAL "Ninja" AND CMAKE_MAKE_PROGRAM)
    set(gen -G Ninja -DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM})
  endif()
  set(log "${work}/build.log")
  execute_process(
    COMMAND "${onnx_cmake}" -S "${src}" -B "${work}/build" ${gen} -DCMAKE_BUILD_TYPE=Release
            -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER} -DCMAKE_POSITION_INDEPENDENT_CODE=ON
            -DONNX_BUILD_PYTHON=OFF -DONNX_BUILD_TESTS=OFF -DONNX_ML=ON
            -DONNX_USE_PROTOBUF_SHARED_LIBS=ON -DONNX_GEN_PB_TYPE_STUBS=OFF -DONNX_USE_UNITY_BUILD=ON
            -DCMAKE_INSTALL_PREFIX=${prefix}.part
    OUTPUT_FILE "${log}" ERROR_FILE "${log}.err" RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    execute_process(COMMAND "${onnx_cmake}" --build "${work}/build" -j ${ncpu}
                    OUTPUT_FILE "${log}" ERROR_FILE "${log}.err" RESULT_VARIABLE rc)
  endif()
  if(rc EQUAL 0)
    file(REMOVE_RECURSE "${prefix}.part")
    execute_process(COMMAND "${onnx_cmake}" --install "${work}/build"
                    OUTPUT_FILE "${log}" ERROR_FILE "${log}.err" RESULT_VARIABLE rc)
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "reinit: building ONNX ${REINIT_ONNX_VERSION} failed (${rc}); see "
            "${log} and ${log}.err")
  endif()
  file(RENAME "${prefix}.part" "${prefix}")
  file(REMOVE_RECURSE "${work}")
endfunction()

if(REINIT_SYSTEM_ONNX)
  find_package(ONNX ${REINIT_ONNX_MIN} CONFIG QUIET)
endif()
if(NOT ONNX_FOUND)
  unset(ONNX_DIR CACHE)
  set(prefix "${REINIT_ONNX_CACHE}/onnx-${REINIT_ONNX_VERSION}-protobuf-${Protobuf_VERSION}")
  if(NOT EXISTS "${prefix}/lib/cmake/ONNX/ONNXConfig.cmake")
    reinit_build_onnx("${prefix}")
  endif()
  find_package(ONNX ${REINIT_ONNX_MIN} CONFIG REQUIRED PATHS "${prefix}" NO_DEFAULT_PATH)
endif()
set(REINIT_ONNX_FOUND_VERSION ${ONNX_VERSION})
if(TARGET ONNX::onnx)
  set(REINIT_ONNX_TARGETS ONNX::onnx ONNX::onnx_proto)
else()
  set(REINIT_ONNX_TARGETS onnx onnx_proto)
endif()
message(STATUS "reinit: ONNX ${ONNX_VERSION} from ${ONNX_DIR}")
