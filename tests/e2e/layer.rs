//! The Yocto layer (`yocto-layer/`, meta-flowgate), checked as far as this machine allows
//! without bitbake: oelint-adv, the crate list against Cargo.lock, the systemd unit, the
//! udev rules and the shell scripts. The tools come from `scripts/deps.sh test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn layer() -> PathBuf {
    root().join("yocto-layer")
}

fn files_dir() -> PathBuf {
    layer().join("recipes-flowgate/flowgate/files")
}

/// Runs a command and fails with its whole output unless it exits 0.
fn run_ok(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run {command:?} (scripts/deps.sh test installs it): {e}")
    });
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn oelint_adv_is_clean_on_every_recipe_and_conf() {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let target = if target.is_absolute() {
        target
    } else {
        root().join(target)
    };
    let oelint = target.join("pyvenv/bin/oelint-adv");
    run_ok(Command::new(layer().join("scripts/lint.sh")).arg(oelint));
}

#[test]
fn the_crate_list_matches_cargo_lock() {
    run_ok(
        Command::new("python3")
            .arg(layer().join("scripts/update-crates.py"))
            .arg("--check"),
    );
}

#[test]
fn the_service_unit_verifies() {
    // systemd-analyze checks that ExecStart's program exists: point it at this build's
    // copy of the CLI; everything else is the shipped unit.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(files_dir().join("flowgate.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/flowgate run --config /etc/flowgate/flowgate.toml"));
    let unit = unit.replace("/usr/bin/flowgate", env!("CARGO_BIN_EXE_flowgate-testd"));
    let path = dir.path().join("flowgate.service");
    std::fs::write(&path, unit).unwrap();
    let output = run_ok(Command::new("systemd-analyze").arg("verify").arg(&path));
    // verify exits 0 on some warnings: any output about the unit is a finding.
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("flowgate.service"),
        "systemd-analyze verify: {text}"
    );
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let mut scripts = vec![root().join(".ci/run")];
    for dir in [
        root().join("scripts"),
        layer().join("scripts"),
        rauc_dir().join("recipes-core/bundles/files"),
    ] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sh") {
                scripts.push(path);
            }
        }
    }
    run_ok(Command::new("shellcheck").args(&scripts));
}

fn rauc_dir() -> PathBuf {
    layer().join("dynamic-layers/rauc")
}

#[test]
fn rauc_recipes_are_parsed_only_with_meta_rauc() {
    // The bundle inherits meta-rauc's `bundle` class: the layer must still parse without
    // meta-rauc, so its recipes are outside the layer's own BBFILES glob (recipes-*/…) and
    // reached only through BBFILES_DYNAMIC for the collection "rauc".
    let conf = std::fs::read_to_string(layer().join("conf/layer.conf")).unwrap();
    for pattern in [
        "rauc:${LAYERDIR}/dynamic-layers/rauc/recipes-*/*/*.bb",
        "rauc:${LAYERDIR}/dynamic-layers/rauc/recipes-*/*/*.bbappend",
    ] {
        assert!(
            conf.contains(pattern),
            "layer.conf lacks {pattern} in BBFILES_DYNAMIC"
        );
    }
    let bundle =
        std::fs::read_to_string(rauc_dir().join("recipes-core/bundles/flowgate-bundle_1.0.bb"))
            .unwrap();
    assert!(bundle.contains("inherit bundle"));
    assert!(bundle.contains("RAUC_SLOT_rootfs = \"flowgate-image\""));
    // The hook the manifest names is the file the recipe fetches.
    assert!(bundle.contains("RAUC_BUNDLE_HOOKS[file] = \"flowgate-bundle-hook.sh\""));
    assert!(bundle.contains("file://flowgate-bundle-hook.sh"));
}

#[test]
fn the_data_partition_mount_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let files = rauc_dir().join("recipes-flowgate/flowgate-rauc/files");
    let unit = std::fs::read_to_string(files.join("var-lib-flowgate.mount")).unwrap();
    // A mount unit's name must be its escaped mount point, and that is the service's
    // StateDirectory.
    assert!(unit.contains("Where=/var/lib/flowgate\n"));
    let service = std::fs::read_to_string(files_dir().join("flowgate.service")).unwrap();
    assert!(service.contains("StateDirectory=flowgate\n"));
    let path = dir.path().join("var-lib-flowgate.mount");
    std::fs::write(&path, unit).unwrap();
    let output = run_ok(Command::new("systemd-analyze").arg("verify").arg(&path));
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("var-lib-flowgate.mount"),
        "systemd-analyze verify: {text}"
    );
}

/// The stable names the rules create for slot 0 (`<model>-0-at`, `<model>-0-audio`).
fn names_from_rules(rules: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some(rest) = line.split("SYMLINK+=\"flowgate/").nth(1) {
            let name = rest.split('"').next().unwrap();
            names.insert(name.replace("$env{FLOWGATE_SLOT}", "0"));
        }
    }
    names
}

#[test]
fn board_profiles_use_names_the_udev_rules_create() {
    let rules = std::fs::read_to_string(files_dir().join("80-flowgate-modems.rules")).unwrap();
    let names = names_from_rules(&rules);
    assert!(
        names.contains("ec25-0-at") && names.contains("ec25-0-audio"),
        "{names:?}"
    );
    let mut used = 0;
    for entry in std::fs::read_dir(root().join("board/boards")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some(rest) = line.split("\"/dev/flowgate/").nth(1) {
                let name = rest.split('"').next().unwrap();
                assert!(
                    names.contains(name),
                    "{}: /dev/flowgate/{name} is not created by the udev rules ({names:?})",
                    path.display()
                );
                used += 1;
            }
        }
    }
    assert!(
        used >= 4,
        "the USB modem profiles should use the stable names"
    );
}

#[test]
fn udev_parses_the_rules_without_complaint() {
    // udevadm (252) reads rules only from its fixed directories: run it in a private mount
    // namespace with the layer's rules bound over /etc/udev/rules.d, and let it process a
    // device every system has (/sys/class/tty/tty0). Each problem udev finds in a rule is
    // logged as `<file>:<line> <message>`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        files_dir().join("80-flowgate-modems.rules"),
        dir.path().join("80-flowgate-modems.rules"),
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/udev/rules.d && udevadm test --action=add /sys/class/tty/tty0",
        dir.path().display()
    );
    let as_root = run_ok(Command::new("id").arg("-u")).stdout == b"0\n";
    let mut command = Command::new("unshare");
    if !as_root {
        command.arg("--map-root-user");
    }
    let output = run_ok(command.args(["--mount", "sh", "-c", &script]));
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("Reading rules file: /etc/udev/rules.d/80-flowgate-modems.rules"),
        "{log}"
    );
    let findings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("80-flowgate-modems.rules:"))
        // The group comes with the package (sysusers/useradd); this host need not have it.
        .filter(|l| !l.ends_with("Unknown group 'flowgate', ignoring"))
        .collect();
    assert!(
        findings.is_empty(),
        "udev found problems in the rules:\n{}",
        findings.join("\n")
    );
}
