# Build options: sanitizers, warnings-as-errors, tests. One place, so every
# target gets the same flags through shmbus_target_defaults().
include(CheckCCompilerFlag)

set(SHMBUS_SANITIZER "none" CACHE STRING "Sanitizer build: none, address (ASan+UBSan), thread (TSan)")
set_property(CACHE SHMBUS_SANITIZER PROPERTY STRINGS none address thread)
option(SHMBUS_WERROR "Treat warnings as errors (CI builds)" OFF)
option(SHMBUS_BUILD_TESTS "Build tests and benchmarks" ON)

set(SHMBUS_WARNINGS "")
foreach(flag -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2
             -Wvla -Wpointer-arith -Wcast-align -Wno-unused-parameter)
  string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    list(APPEND SHMBUS_WARNINGS ${flag})
  endif()
endforeach()
if(SHMBUS_WERROR)
  list(APPEND SHMBUS_WARNINGS -Werror)
endif()

set(SHMBUS_SAN_FLAGS "")
if(SHMBUS_SANITIZER STREQUAL "address")
  set(SHMBUS_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
elseif(SHMBUS_SANITIZER STREQUAL "thread")
  set(SHMBUS_SAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
  # GCC warns that TSan does not model atomic_thread_fence. The fences in
  # libshm order cross-process accesses that TSan cannot see anyway (it sees
  # threads, not processes); the thread tests still run under it.
  check_c_compiler_flag(-Wno-tsan HAVE_WNO_TSAN)
  if(HAVE_WNO_TSAN)
    add_compile_options(-Wno-tsan)
  endif()
  # GCC >= 12 warns (-Wtsan) that TSan does not model atomic_thread_fence.
  # An unmodelled fence makes TSan see less ordering than there is: it can
  # only report a race the fence prevents, never hide one. libshm's fences
  # order atomics only (Dekker with `sleepers`, the claim word re-read),
  # except the drop-oldest seqlock copy that tests/tsan.supp names.
  check_c_compiler_flag(-Wtsan SHMBUS_HAVE_WTSAN)
  if(SHMBUS_HAVE_WTSAN)
    list(APPEND SHMBUS_SAN_FLAGS -Wno-tsan)
  endif()
elseif(NOT SHMBUS_SANITIZER STREQUAL "none")
  message(FATAL_ERROR "SHMBUS_SANITIZER must be none, address or thread (got '${SHMBUS_SANITIZER}')")
endif()
if(SHMBUS_SAN_FLAGS)
  add_compile_options(${SHMBUS_SAN_FLAGS})
  add_link_options(${SHMBUS_SAN_FLAGS})
  add_compile_definitions(SHMBUS_SANITIZED=1)
endif()

# Applies the project's warnings and defines to one target.
function(shmbus_target_defaults target)
  target_compile_options(${target} PRIVATE ${SHMBUS_WARNINGS})
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
endfunction()
