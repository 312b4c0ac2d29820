//! Compiles the `.proto` files with `protox` (pure Rust), so no system `protoc` is needed.
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "kms/v1/kms.proto",
        "kms/admin/v1/admin.proto",
        "kms/bench/v1/echo.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Kept for gRPC server reflection.
    std::fs::write(out.join("kms_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::SmallMessages")
        // An ordered map costs nothing to make when empty, as a key's tags nearly always are (a
        // HashMap draws its hasher's keys for every metadata answered).
        .btree_map(".kms.v1.KeyMetadata.tags")
        .compile_fds(fds)?;
    Ok(())
}
