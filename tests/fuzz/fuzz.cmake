# Every tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput. With FLUID_FUZZ it becomes the
# libFuzzer program fuzz_<target> (all of them: `cmake --build build-fuzz --target fuzz`); in the
# normal builds it is linked with replay.c instead and ctest runs fuzz_replay_<target> over
# tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/.
set(FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${FUZZ_DIR}/fuzz_*.c)
add_library(fluid_fuzz_harness STATIC ${FUZZ_DIR}/harness.c
                                      ${CMAKE_SOURCE_DIR}/tools/fluid-synth/vocab.c)
target_include_directories(fluid_fuzz_harness PUBLIC ${FUZZ_DIR} ${CMAKE_SOURCE_DIR}/tools)
target_link_libraries(fluid_fuzz_harness PUBLIC fluid_server_core)

if(FLUID_FUZZ)
    add_custom_target(fuzz)
endif()
foreach(src IN LISTS FUZZ_TARGETS)
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" target ${name})
    if(FLUID_FUZZ)
        add_executable(${name} ${src})
        target_link_libraries(${name} PRIVATE fluid_fuzz_harness)
        target_link_options(${name} PRIVATE -fsanitize=fuzzer)
        add_dependencies(fuzz ${name})
    else()
        add_executable(fuzz_replay_${target} ${src} ${FUZZ_DIR}/replay.c)
        target_link_libraries(fuzz_replay_${target} PRIVATE fluid_fuzz_harness)
        add_test(NAME fuzz_replay_${target}
                 COMMAND fuzz_replay_${target} ${FUZZ_DIR}/corpus/${target}
                         ${FUZZ_DIR}/regressions/${target})
        set_tests_properties(fuzz_replay_${target} PROPERTIES ENVIRONMENT "${FLUID_TEST_ENV}")
    endif()
endforeach()

# The generator of the binary GGUF seeds (tests/fuzz/make_seeds.py runs it).
if(NOT FLUID_FUZZ AND TARGET fluid_test_support)
    add_executable(fuzz-make-seeds ${FUZZ_DIR}/make_seeds.c)
    target_link_libraries(fuzz-make-seeds PRIVATE fluid_fuzz_harness fluid_test_support)
endif()
