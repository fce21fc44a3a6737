# Writes OUT, a C source defining `const char NAME[]`: the bytes of IN and a terminating NUL,
# and `const unsigned long NAME_size` (the bytes without the NUL). Run with cmake -P.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(REGEX REPLACE "(('[^']+',){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
     "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
     "const char ${NAME}[] = {\n    ${bytes}'\\0'};\n"
     "const unsigned long ${NAME}_size = ${size}UL;\n")
file(RENAME "${OUT}.tmp" "${OUT}")
