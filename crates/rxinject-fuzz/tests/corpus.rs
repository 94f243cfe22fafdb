//! Every file of the seed corpora (`fuzz/corpus/<target>/`: the seeds, and every input a
//! fuzzer ever crashed on, kept there under `crash-<name>`) replayed through its target's
//! check, on the stable toolchain: a past crash cannot come back unseen.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_passes_its_targets_check() {
    let mut failures = Vec::new();
    for target in rxinject_fuzz::TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target}: no seeds in {}", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let run = std::panic::catch_unwind(|| rxinject_fuzz::run(target, &data));
            if let Err(e) = run {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{target}: {}: {why}", f.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs target `target` on its corpus file `name`.
fn replay(target: &str, name: &str) {
    let f = corpus_dir(target).join(name);
    let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    rxinject_fuzz::run(target, &data);
}

/// The first campaign's crash (`bpf`): a program whose opcodes have bits above the low 8
/// set, which libpcap's `bpf_validate` lets through and its `bpf_filter()` then aborts on.
/// Not ours to compare: the check leaves such programs out of the differential.
#[test]
fn crash_libpcap_aborts_on_opcode_above_255() {
    replay("bpf", "crash-libpcap-aborts-on-opcode-above-255");
    replay("bpf", "crash-libpcap-aborts-on-opcode-above-255-b");
}
