SUMMARY = "Minimal systemd image for a Flowgate gateway"
DESCRIPTION = "Boots to the Flowgate service: the core boot packages and the Flowgate \
               runtime (daemon, espeak-ng, alsa-utils), nothing else. The distro must \
               use systemd (INIT_MANAGER = systemd)."
SECTION = "images"
LICENSE = "MIT"

inherit core-image features_check

REQUIRED_DISTRO_FEATURES = "systemd"

IMAGE_INSTALL = "packagegroup-core-boot packagegroup-flowgate ${CORE_IMAGE_EXTRA_INSTALL}"
IMAGE_LINGUAS = ""
