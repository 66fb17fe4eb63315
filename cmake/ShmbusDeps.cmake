# Third-party dependencies, all from Debian packages (deploy/install-deps.sh
# names them). Found through pkg-config or find_package; nothing vendored.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(MODBUS REQUIRED IMPORTED_TARGET libmodbus)
pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
find_package(nng REQUIRED CONFIG)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
# shmbus-export: PostgreSQL client (libpq-dev) and MQTT client (libmosquitto-dev).
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)
find_program(FLATC flatc REQUIRED)
find_program(SHMBUS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH REQUIRED)
