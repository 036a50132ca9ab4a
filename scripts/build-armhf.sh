#!/bin/sh
# 32-bit ARMv7 hard-float build (Raspberry Pi OS 32-bit; Greengrass architecture "arm"):
# the same as scripts/build-aarch64.sh --arch armhf (options are passed on).
exec sh "$(dirname "$0")/build-aarch64.sh" --arch armhf "$@"
