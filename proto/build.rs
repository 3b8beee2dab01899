//! Generates the v1 API and a file descriptor set for gRPC reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "customs/common/v1/common.proto",
    "customs/declaration/v1/declaration.proto",
    "customs/risk/v1/risk.proto",
    "customs/review/v1/review.proto",
    "customs/field/v1/field.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // The vendored protoc also carries google/protobuf/*.proto.
        unsafe_set_protoc(protoc);
    }
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("customs_descriptor.bin"))
        // A method added to a .proto before its implementation answers UNIMPLEMENTED.
        .generate_default_stubs(true)
        .compile_protos(PROTOS, &["."])?;
    Ok(())
}

fn unsafe_set_protoc(path: PathBuf) {
    // `set_var` is `unsafe` in edition 2024; a build script has no other threads.
    #[allow(unsafe_code)]
    unsafe {
        env::set_var("PROTOC", path);
    }
}
