//! `rxinject-bench SCENARIO FRAMES DRIVER.sys`: one bench scenario on the loaded driver image,
//! printed as one JSON line. `cargo xtask bench` runs it (under valgrind, and natively).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match xtask::bench::runner_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rxinject-bench: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
