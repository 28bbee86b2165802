SUMMARY = "RAUC update bundle of the Flowgate image"
DESCRIPTION = "A signed RAUC bundle (verity format) carrying flowgate-image as the root \
               file system of an A/B system. The data partition with /var/lib/flowgate \
               is not in the bundle: both slots share it, so an update keeps the database, \
               recordings and API token. Built only when meta-rauc is in the build."
HOMEPAGE = "https://example.invalid/flowgate"
SECTION = "images"
LICENSE = "MIT"
# nooelint: oelint.var.licenseremotefile - no sources of its own: the layer's files are MIT
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://flowgate-bundle-hook.sh"

inherit bundle

# Must equal `compatible=` in the target's /etc/rauc/system.conf (from the BSP's rauc-conf
# bbappend): RAUC refuses a bundle for another product.
RAUC_BUNDLE_COMPATIBLE ?= "flowgate-${MACHINE}"
RAUC_BUNDLE_VERSION ?= "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION ?= "Flowgate gateway image"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "flowgate-image"
RAUC_SLOT_rootfs[fstype] = "ext4"
# The new slot gets the installer's /etc/flowgate/flowgate.toml (the hook's header says why).
RAUC_SLOT_rootfs[hooks] = "post-install"
RAUC_BUNDLE_HOOKS[file] = "flowgate-bundle-hook.sh"

# The signing key and certificate are the site's, never the layer's: set RAUC_KEY_FILE and
# RAUC_CERT_FILE in local.conf or the distro conf (meta-rauc's class reads them).
