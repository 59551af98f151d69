# Test discovery for a GoogleTest binary built from several modules (tests/<module>_test.cc):
# run after the binary is linked (a POST_BUILD command, see tests/CMakeLists.txt), it writes the
# ctest script CTEST_FILE with one ctest test per GoogleTest test, named <module>.<Suite>.<Test>
# as gtest_discover_tests(... TEST_PREFIX "<module>.") names them for a one-module binary
# (CMake 3.25's GoogleTestAddTests.cmake: the same pretty names for value- and type-
# parameterized tests, the same arguments and properties). The module of a test is the file
# that defines it, from gtest's JSON listing (its "file" field); the text listing gives the
# names, in the same order.
#
# cmake -D TEST_EXECUTABLE=... -D TEST_WORKING_DIR=... -D CTEST_FILE=...
#       -D TEST_DISCOVERY_TIMEOUT=60 [-D MODULE_COSTS=kill=20,cli=2] -P discover_tests.cmake
# MODULE_COSTS: the COST property (rough seconds; ctest -j starts costly tests first) of every
# test of the modules named.
cmake_minimum_required(VERSION 3.22)

string(REPLACE "," ";" module_costs "${MODULE_COSTS}")

set(json_file "${CTEST_FILE}.list.json")
file(REMOVE "${json_file}")
execute_process(
  COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests "--gtest_output=json:${json_file}"
  WORKING_DIRECTORY "${TEST_WORKING_DIR}"
  TIMEOUT ${TEST_DISCOVERY_TIMEOUT}
  OUTPUT_VARIABLE output
  RESULT_VARIABLE result)
if(NOT result EQUAL 0 OR NOT EXISTS "${json_file}")
  message(FATAL_ERROR "Error listing the tests of ${TEST_EXECUTABLE} (result ${result}):\n"
                      "${output}")
endif()

# The JSON listing, one key per line: each test's "name" (in its suite) and "file", in order.
file(STRINGS "${json_file}" json_lines REGEX "^ +\"(name|file)\": \"")
file(REMOVE "${json_file}")
set(json_names)
set(json_files)
set(in_suite_list FALSE)
foreach(line IN LISTS json_lines)
  if(line MATCHES "^          \"name\": \"(.*)\",?$")  # a test (a suite's name is less indented)
    string(REPLACE "\\/" "/" name "${CMAKE_MATCH_1}")
    list(APPEND json_names "${name}")
  elseif(line MATCHES "^          \"file\": \"(.*)\",?$")
    string(REPLACE "\\/" "/" file "${CMAKE_MATCH_1}")
    list(APPEND json_files "${file}")
  endif()
endforeach()
list(LENGTH json_names json_count)
list(LENGTH json_files json_file_count)
if(NOT json_count EQUAL json_file_count)
  message(FATAL_ERROR "${TEST_EXECUTABLE}: ${json_count} tests but ${json_file_count} files "
                      "in the JSON listing")
endif()

# The text listing: "Suite." lines (with "  # TypeParam = T" for typed suites), then
# "  Test" lines (with "  # GetParam() = V" for value-parameterized ones).
string(REPLACE ";" "\\;" output "${output}")
string(REPLACE "\n" ";" output "${output}")
set(script "")
set(index 0)
set(seen)
foreach(line IN LISTS output)
  if(line STREQUAL "" OR line MATCHES "gtest_main\\.cc")
    continue()
  endif()
  if(NOT line MATCHES "^  ")
    string(REGEX REPLACE "\\.( *#.*)?$" "" suite "${line}")
    if(line MATCHES "#")
      string(REGEX REPLACE "/.*" "" pretty_suite "${line}")
      string(REGEX REPLACE ".*/[0-9]+[ .#]+TypeParam = (.*)" "\\1" type_parameter "${line}")
      set(template "@module@.@pretty_suite@.@pretty_test@<@type_parameter@>")
    else()
      set(pretty_suite "${suite}")
      set(template "@module@.@pretty_suite@.@pretty_test@")
    endif()
    string(REGEX REPLACE "^DISABLED_" "" pretty_suite "${pretty_suite}")
    continue()
  endif()
  string(STRIP "${line}" test)
  if(test MATCHES "#")
    string(REGEX REPLACE "/[0-9]+[ #]+GetParam\\(\\) = " "/" pretty_test "${test}")
  else()
    string(REGEX REPLACE " +#.*" "" pretty_test "${test}")
  endif()
  string(REGEX REPLACE "^DISABLED_" "" pretty_test "${pretty_test}")
  string(REGEX REPLACE " +#.*" "" test "${test}")

  if(index GREATER_EQUAL json_count)
    message(FATAL_ERROR "${TEST_EXECUTABLE}: more tests in the text listing than in the JSON one")
  endif()
  list(GET json_names ${index} json_name)
  list(GET json_files ${index} file)
  math(EXPR index "${index} + 1")
  if(NOT json_name STREQUAL test)
    message(FATAL_ERROR "${TEST_EXECUTABLE}: the listings disagree at ${suite}.${test} "
                        "(JSON: ${json_name})")
  endif()
  if(NOT file MATCHES "([^/]+)_test\\.cc$")
    message(FATAL_ERROR "${suite}.${test} is defined in ${file}, not in a <module>_test.cc")
  endif()
  set(module "${CMAKE_MATCH_1}")
  # Two modules defining the same Suite.Test would each run both under --gtest_filter.
  if("${suite}.${test}" IN_LIST seen)
    message(FATAL_ERROR "${suite}.${test} is defined twice in ${TEST_EXECUTABLE} (again in "
                        "${file}): rename one of them")
  endif()
  list(APPEND seen "${suite}.${test}")

  string(CONFIGURE "${template}" name)
  if(name MATCHES "\\]==\\]")
    message(FATAL_ERROR "unsupported test name: ${name}")
  endif()
  string(APPEND script
    "add_test([==[${name}]==] [==[${TEST_EXECUTABLE}]==] [==[--gtest_filter=${suite}.${test}]==]"
    " --gtest_also_run_disabled_tests)\n")
  if(suite MATCHES "^DISABLED_" OR test MATCHES "^DISABLED_")
    string(APPEND script "set_tests_properties([==[${name}]==] PROPERTIES DISABLED TRUE)\n")
  endif()
  set(cost "")
  foreach(entry IN LISTS module_costs)
    if(entry MATCHES "^${module}=(.+)$")
      set(cost " COST ${CMAKE_MATCH_1}")
    endif()
  endforeach()
  string(APPEND script
    "set_tests_properties([==[${name}]==] PROPERTIES WORKING_DIRECTORY "
    "[==[${TEST_WORKING_DIR}]==] SKIP_REGULAR_EXPRESSION [==[\\[  SKIPPED \\]]==]${cost})\n")
endforeach()
if(NOT index EQUAL json_count)
  message(FATAL_ERROR "${TEST_EXECUTABLE}: ${index} tests in the text listing, ${json_count} in "
                      "the JSON one")
endif()
file(WRITE "${CTEST_FILE}" "${script}")
