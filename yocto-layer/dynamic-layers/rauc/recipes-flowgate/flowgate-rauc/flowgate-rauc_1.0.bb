SUMMARY = "Flowgate on an A/B RAUC system: shared data partition and boot health"
DESCRIPTION = "Mounts the data partition (label flowgate-data) at /var/lib/flowgate so \
               both root file system slots use the same database, recordings and API \
               token; makes the service wait for that mount; and makes boot-complete.target \
               (which RAUC's mark-good service waits for) require a started gateway, so a \
               slot whose daemon does not come up is never marked good and the bootloader \
               falls back to the other slot."
HOMEPAGE = "https://example.invalid/flowgate"
SECTION = "net"
LICENSE = "MIT"
# nooelint: oelint.var.licenseremotefile - no sources of its own: the layer's files are MIT
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://var-lib-flowgate.mount \
           file://flowgate-data.conf \
           file://boot-complete-flowgate.conf \
           "

inherit allarch systemd

do_install() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${UNPACKDIR}/var-lib-flowgate.mount ${D}${systemd_system_unitdir}/var-lib-flowgate.mount
    install -d ${D}${systemd_system_unitdir}/flowgate.service.d
    install -m 0644 ${UNPACKDIR}/flowgate-data.conf ${D}${systemd_system_unitdir}/flowgate.service.d/flowgate-data.conf
    install -d ${D}${systemd_system_unitdir}/boot-complete.target.d
    install -m 0644 ${UNPACKDIR}/boot-complete-flowgate.conf ${D}${systemd_system_unitdir}/boot-complete.target.d/flowgate.conf
}

SYSTEMD_SERVICE:${PN} = "var-lib-flowgate.mount"

FILES:${PN} += "${systemd_system_unitdir}/flowgate.service.d/flowgate-data.conf \
                ${systemd_system_unitdir}/boot-complete.target.d/flowgate.conf \
                "

RDEPENDS:${PN} = "flowgate"
