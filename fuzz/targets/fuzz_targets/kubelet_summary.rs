#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kotel_fuzz::kubelet_summary(data));
