//! Whether this is a CI run, and what a test does when a tool it needs is missing. Depends on
//! nothing, so a self-contained helper (`redis_server.rs`) can include it by `#[path]` too.
#![allow(dead_code)]

/// Whether this is a CI run (`CI` set, and not to `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A tool a test needs is missing: under CI that fails the test; elsewhere the test is skipped
/// with a notice no one can miss.
pub fn tool_missing(message: &str) {
    assert!(
        !in_ci(),
        "{message}; under CI this is a failure, not a skip"
    );
    eprintln!(
        "\n{}\nSKIPPED: {message}\n{}\n",
        "!".repeat(78),
        "!".repeat(78)
    );
}
