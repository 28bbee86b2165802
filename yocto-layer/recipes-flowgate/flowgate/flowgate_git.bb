SUMMARY = "Flowgate: call and SMS flows on a GSM/analog/SIP gateway"
DESCRIPTION = "The Flowgate daemon runs VoIPBIN-compatible call and SMS flows locally \
               on a Linux board with GSM/LTE modems, analog FXS/FXO ports and SIP, and \
               serves a LAN API."
HOMEPAGE = "https://example.invalid/flowgate"
SECTION = "net"
CVE_PRODUCT = "flowgate"
LICENSE = "MIT | Apache-2.0"
# The workspace declares its licence in Cargo.toml (line 14); the crate-list test checks
# that this checksum still matches that line.
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=14;endline=14;md5=86b31c7756a1a7962f28b62856ed4f05"

DEPENDS = "alsa-lib"

PV = "0.1.0+git"

# The repository this layer lives in. Point bitbake at your own server with PREMIRRORS in
# local.conf (git://example.invalid/.* git://git.example.com/PATH;protocol=ssh); for a
# checkout on disk use externalsrc or `devtool modify flowgate`.
SRC_URI = "git://example.invalid/flowgate.git;protocol=https;branch=main \
           file://flowgate.service \
           file://flowgate.sysusers \
           file://flowgate.toml \
           file://80-flowgate-modems.rules \
           "
# The commit whose Cargo.lock flowgate-crates.inc was generated from: bump both together.
SRCREV = "2f7cd5c5e2266faf1dc0b067c01d33eded4cb062"

inherit cargo cargo-update-recipe-crates pkgconfig systemd

# Every crate from crates.io, fetched by bitbake (the build itself runs `cargo --frozen`
# without network). Generated from Cargo.lock by yocto-layer/scripts/update-crates.py.
require ${BPN}-crates.inc

# Only the daemon, not the test helpers and simulators of the other workspace members.
CARGO_BUILD_FLAGS += "-p flowgate --bin flowgate"

# The daemon's cargo features, all off in the default image to fit small flash (README,
# "Binary size"); turn one on with e.g. PACKAGECONFIG:append:pn-flowgate = " mp3" in
# local.conf or a bbappend:
# - mp3, flac, ogg-vorbis: audio decoders beyond WAV (PCM, µ-law/A-law, ADPCM); without
#   them `play` of such a file ends with "… not available in this build".
# - simulator: the simulated modem and analog board (a development and demo board, the
#   workspace's default); without it the daemon answers /v1.0/gateway/sim with 503
#   NO_SIMULATOR and refuses a board profile with simulated parts.
CARGO_BUILD_FLAGS += "--no-default-features"
PACKAGECONFIG ??= ""
PACKAGECONFIG[mp3] = ""
PACKAGECONFIG[flac] = ""
PACKAGECONFIG[ogg-vorbis] = ""
PACKAGECONFIG[simulator] = ""
CARGO_BUILD_FLAGS += "${@' '.join(['--features', ','.join(d.getVar('PACKAGECONFIG').split())]) if d.getVar('PACKAGECONFIG').split() else ''}"

# The board profile written into /etc/flowgate/flowgate.toml (a name from board/boards or
# a profile file installed by a bbappend).
FLOWGATE_BOARD ??= "rpi4-quectel-ec25"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${UNPACKDIR}/flowgate.service ${D}${systemd_system_unitdir}/flowgate.service
    install -d ${D}${nonarch_libdir}/sysusers.d
    install -m 0644 ${UNPACKDIR}/flowgate.sysusers ${D}${nonarch_libdir}/sysusers.d/flowgate.conf
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${UNPACKDIR}/80-flowgate-modems.rules ${D}${nonarch_base_libdir}/udev/rules.d/80-flowgate-modems.rules
    install -d ${D}${sysconfdir}/flowgate
    sed -e 's|@FLOWGATE_BOARD@|${FLOWGATE_BOARD}|' ${UNPACKDIR}/flowgate.toml > ${D}${sysconfdir}/flowgate/flowgate.toml
    chmod 0644 ${D}${sysconfdir}/flowgate/flowgate.toml
}

SYSTEMD_SERVICE:${PN} = "flowgate.service"

FILES:${PN} += "${nonarch_libdir}/sysusers.d/flowgate.conf \
                ${nonarch_base_libdir}/udev/rules.d/80-flowgate-modems.rules \
                "
# A package upgrade keeps the installer's edits; the data directory (/var/lib/flowgate,
# StateDirectory=) is not part of the package and survives upgrades untouched.
CONFFILES:${PN} = "${sysconfdir}/flowgate/flowgate.toml"

# alsa-lib: the ALSA library the daemon links. espeak-ng: the TTS program `talk` runs.
# tzdata: the time zones of condition_datetime (/usr/share/zoneinfo; none are compiled in).
# ca-certificates: the roots outgoing TLS trusts (/etc/ssl/certs/ca-certificates.crt:
# https fetch, webhooks and media, SMTP with TLS; none are compiled in).
RDEPENDS:${PN} = "alsa-lib ca-certificates espeak-ng tzdata"
