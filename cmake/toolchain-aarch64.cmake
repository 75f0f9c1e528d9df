# SPDX-License-Identifier: BSD-3-Clause
# Cross build for aarch64 (arm64) Linux on a Debian host, the tests run
# under qemu-user (the `aarch64' preset; `make test-aarch64').
# Needs crossbuild-essential-arm64 and qemu-user; the target's libraries
# come from /usr/aarch64-linux-gnu, which qemu-aarch64 -L uses as the
# guest's root for its dynamic loader and libraries.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(SK_CROSS_TRIPLE aarch64-linux-gnu)
set(SK_CROSS_SYSROOT /usr/${SK_CROSS_TRIPLE})
set(CMAKE_C_COMPILER ${SK_CROSS_TRIPLE}-gcc)
# (C++ only for api/cxx_consumer; tests/api skips it without a compiler.)
find_program(SK_CROSS_CXX ${SK_CROSS_TRIPLE}-g++)
if(SK_CROSS_CXX)
	set(CMAKE_CXX_COMPILER ${SK_CROSS_CXX})
endif()

# Libraries and headers from the target's tree only; programs (sh,
# mandoc, clang) from the host.
set(CMAKE_FIND_ROOT_PATH ${SK_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test whose command is a target through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${SK_CROSS_SYSROOT})
