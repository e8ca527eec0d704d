//! Rules about the services' code that no type checks.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// A span guard (`span.enter()`) held across an `.await` stays on the thread's span stack while
/// the task moves on; tracing-subscriber then panics ("tried to clone a span that already
/// closed") in whichever task next runs there, and the projection service lost every consumer
/// to it every few minutes. Async code attaches spans with `.instrument(span)` instead.
#[test]
fn no_service_enters_a_span_by_guard() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for crate_dir in ["events", "command-service", "projection-service", "query-api"] {
        sources(&root.join(crate_dir).join("src"), &mut files);
    }
    assert!(files.len() > 20, "the sources were found");
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains(".enter()") && !line.trim_start().starts_with("//"))
                .map(|(number, line)| format!("{}:{}: {}", file.display(), number + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "span guards in service code:\n{}",
        offenders.join("\n")
    );
}
