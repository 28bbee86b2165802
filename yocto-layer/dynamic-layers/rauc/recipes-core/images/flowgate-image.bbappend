# With meta-rauc and DISTRO_FEATURES "rauc": the image is an A/B slot. It carries the RAUC
# client and what keeps the gateway's state on the shared data partition (flowgate-rauc).
IMAGE_INSTALL:append = "${@bb.utils.contains('DISTRO_FEATURES', 'rauc', ' rauc flowgate-rauc', '', d)}"
