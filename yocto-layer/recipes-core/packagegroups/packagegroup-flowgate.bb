SUMMARY = "Flowgate gateway runtime"
DESCRIPTION = "What a Flowgate gateway runs: the daemon, its TTS engine and the ALSA \
               tools an installer checks the sound devices with (aplay -l, amixer)."
SECTION = "net"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "alsa-utils \
                  espeak-ng \
                  flowgate \
                  "
