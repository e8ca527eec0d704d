//! The binary itself: it starts and names every mode operators use.

#[test]
fn the_binary_lists_its_modes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_command-service"))
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for mode in ["serve", "migrate", "relay", "seed", "verify", "digest", "token"] {
        assert!(help.contains(mode), "{mode} missing from:\n{help}");
    }
}
