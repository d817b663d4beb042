# Browser tests of the admin dashboard (gateway/web/), label "browser".
# Included by the top-level CMakeLists.txt. Both run headless Debian chromium
# through tests/browser/run.sh; screenshots land in the build directory.
#   browser.dashboard       the real broker, sweeper and gateway from the build
#                           dir (skipped, exit 77, if they are not built)
#   browser.dashboard_mock  the page against tests/browser/mock-gateway.mjs

#   Defined only when chromium, node and npm are installed.
find_program(PRES_CHROMIUM NAMES chromium chromium-browser)
find_program(PRES_NODE node)
find_program(PRES_NPM npm)
if(NOT PRES_CHROMIUM OR NOT PRES_NODE OR NOT PRES_NPM)
  list(APPEND PRES_SKIPPED "browser.* (chromium, nodejs, npm)")
  return()
endif()

add_test(NAME browser.dashboard
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/browser/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(browser.dashboard PROPERTIES
    LABELS browser
    TIMEOUT 300
    SKIP_RETURN_CODE 77
    RESOURCE_LOCK presence_browser
    ATTACHED_FILES_ON_FAIL "${CMAKE_BINARY_DIR}/dashboard-failure.png")

add_test(NAME browser.dashboard_mock
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/browser/run.sh ${CMAKE_BINARY_DIR} --mock)
set_tests_properties(browser.dashboard_mock PROPERTIES
    LABELS browser
    TIMEOUT 300
    RESOURCE_LOCK presence_browser
    ATTACHED_FILES_ON_FAIL "${CMAKE_BINARY_DIR}/dashboard-mock-failure.png")
