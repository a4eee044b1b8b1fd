#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kotel_fuzz::filelog_operators(data));
