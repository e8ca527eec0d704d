//! The binary itself: it starts and names every mode operators use.

#[test]
fn the_binary_lists_its_modes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_projection-service"))
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for mode in ["serve", "migrate", "rebuild", "snapshots", "drop-snapshot", "dlq"] {
        assert!(help.contains(mode), "{mode} missing from:\n{help}");
    }
    let dlq = std::process::Command::new(env!("CARGO_BIN_EXE_projection-service"))
        .args(["dlq", "--help"])
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&dlq.stdout);
    assert!(help.contains("list") && help.contains("replay"), "{help}");
}
