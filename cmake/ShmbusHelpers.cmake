# shmbus_add_test(NAME <name> SOURCES <files...> [LIBS <libs...>] [TIMEOUT <s>]
#                 [LABELS <labels...>] [ARGS <args...>] [ENV <VAR=value...>])
# Adds a cmocka test executable linked against the static test build of libshm
# (which exposes internals), registers it with ctest with a timeout, and lets
# exit status 77 mean "skipped" (liburing's and automake's convention).
function(shmbus_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  shmbus_target_defaults(${T_NAME})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/libshm ${CMAKE_SOURCE_DIR}/tests/common)
  target_link_libraries(${T_NAME} PRIVATE shm_static shmtest PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                       LABELS "${T_LABELS}")
  set(env "SHMBUS_BIN_DIR=${CMAKE_BINARY_DIR}/bin;SHMBUS_SOURCE_DIR=${CMAKE_SOURCE_DIR};SHMBUS_PYTHON3=${SHMBUS_PYTHON3}")
  if(T_ENV)
    list(APPEND env ${T_ENV})
  endif()
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${env}")
endfunction()

# shmbus_add_script_test(NAME <name> COMMAND <cmd...> [TIMEOUT s] [LABELS ...])
# Registers a test that runs a script (shell or Python) with the same
# environment variables as shmbus_add_test.
function(shmbus_add_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  set(env "SHMBUS_BIN_DIR=${CMAKE_BINARY_DIR}/bin;SHMBUS_SOURCE_DIR=${CMAKE_SOURCE_DIR};SHMBUS_PYTHON3=${SHMBUS_PYTHON3};SHMBUS_BUILD_DIR=${CMAKE_BINARY_DIR}")
  if(T_ENV)
    list(APPEND env ${T_ENV})
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                       LABELS "${T_LABELS}" ENVIRONMENT "${env}")
endfunction()

# Adds every immediate subdirectory of `dir` that has a CMakeLists.txt, so a
# new service or test folder needs no edit of a shared list.
function(shmbus_add_subdirectories dir)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${dir} ${dir}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${dir}/${child} AND EXISTS ${dir}/${child}/CMakeLists.txt)
      add_subdirectory(${dir}/${child})
    endif()
  endforeach()
endfunction()
