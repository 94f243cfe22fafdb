//! `device_sequence`: see `rxinject_fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rxinject_fuzz::run("device_sequence", data));
