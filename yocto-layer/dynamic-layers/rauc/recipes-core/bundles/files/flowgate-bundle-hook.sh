#!/bin/sh
# RAUC hook of the Flowgate bundle, run on the box by `rauc install` (RAUC passes the hook
# name as $1 and describes the slot in RAUC_SLOT_* variables).
#
# slot-post-install (rootfs): the new slot is written and mounted at RAUC_SLOT_MOUNT_POINT.
# /etc/flowgate/flowgate.toml is a CONFFILE: a package upgrade keeps the installer's edits,
# but an A/B update writes a whole new root file system with the image's default config.
# Copy the running system's file into the new slot so the gateway comes back configured as
# it was. /var/lib/flowgate needs nothing: it is on the data partition both slots mount.
set -eu

config=/etc/flowgate/flowgate.toml

case "${1:-}" in
slot-post-install)
	[ "${RAUC_SLOT_CLASS:-}" = rootfs ] || exit 0
	[ -n "${RAUC_SLOT_MOUNT_POINT:-}" ] || {
		echo "flowgate hook: RAUC_SLOT_MOUNT_POINT is not set" >&2
		exit 1
	}
	if [ -f "$config" ]; then
		mkdir -p "$RAUC_SLOT_MOUNT_POINT/etc/flowgate"
		cp -p "$config" "$RAUC_SLOT_MOUNT_POINT$config"
		echo "flowgate hook: kept $config in the new slot"
	fi
	;;
*)
	# Hooks this bundle does not register (RAUC only calls the registered ones).
	;;
esac
