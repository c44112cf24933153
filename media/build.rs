//! Tells a newcomer which system package the build is missing: without `nasm`, openh264
//! (built from source by the `openh264` crate) silently drops its assembly and encodes
//! about 1.5 times slower.

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    let x86 = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64" || a == "x86");
    let has_nasm = std::process::Command::new("nasm")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if x86 && !has_nasm {
        println!(
            "cargo:warning=nasm is not installed: openh264 is being built without its assembly \
             and will encode ~1.5x slower. Install it (Debian/Ubuntu: sudo apt-get install nasm), \
             then rebuild openh264: cargo clean -p openh264-sys2 && cargo build --release"
        );
    }
}
